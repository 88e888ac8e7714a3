// The few S3 XML documents the S3 blob store reads: a ListObjectsV2 page and an error body.
//
// S3's responses are flat, machine-written XML, so they are scanned for the known elements
// rather than parsed by a general XML library; text is un-escaped (the five predefined entities
// and numeric character references).
//
//   Result<ListObjectsPage> page = parse_list_objects(response.text());
//   S3ErrorBody error = parse_error(response.text());   // {"NoSuchKey", "The specified key ..."}
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace dither::s3 {

struct ListObjectsPage {
  std::vector<std::string> keys;  // <Contents><Key>, un-escaped, in the order given
  bool truncated = false;         // <IsTruncated>true</IsTruncated>
  std::string next_token;         // <NextContinuationToken>, for the next page
};

// kInternal when the text is not a ListBucketResult or an element is not closed.
Result<ListObjectsPage> parse_list_objects(std::string_view xml);

struct S3ErrorBody {
  std::string code;     // e.g. "NoSuchKey", "SignatureDoesNotMatch", "SlowDown"; "" if none
  std::string message;  // S3's <Message>, or ""
};

// Never fails: an empty or foreign body gives empty fields.
S3ErrorBody parse_error(std::string_view xml);

// Decodes &amp; &lt; &gt; &quot; &apos; &#N; &#xH; (to UTF-8). An unknown or malformed entity is
// kept as written.
std::string xml_unescape(std::string_view text);

}  // namespace dither::s3
