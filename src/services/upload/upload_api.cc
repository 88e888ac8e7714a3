#include "services/upload/upload_api.h"

#include <boost/json.hpp>
#include <charconv>

#include "http/errors.h"
#include "http/multipart.h"
#include "mail/rfc5322.h"
#include "messaging/events.h"
#include "services/common/outbox_api.h"
#include "services/common/paging.h"

namespace dither {
namespace {

namespace json = boost::json;
using http::RequestContext;
using http::Response;

json::object image_object(const ImageRecord& r, const LinkPolicy& links) {
  json::object o;
  o["id"] = r.id;
  o["uuid"] = r.uuid.value;
  o["filename"] = r.filename;
  o["status"] = r.status;
  o["url"] = links.sign(r.url);
  o["url_dither"] = links.sign(r.url_dither);
  o["content_type"] = r.content_type;
  o["size"] = r.size;
  o["width"] = r.width;
  o["height"] = r.height;
  o["frames"] = r.frames;
  o["error"] = text_or_null(r.error);
  o["created_at"] = iso_time(r.created_at);
  o["updated_at"] = iso_time(r.updated_at);
  return o;
}

json::object summary_object(const DitherSummary& d, const LinkPolicy& links) {
  json::object o;
  o["dither_id"] = d.dither_id;
  o["status"] = d.status;
  o["url_dither"] = links.sign(d.url_dither);
  o["channels"] = d.channels;
  o["algorithm"] = d.algorithm;
  o["palette"] = d.palette;
  o["format"] = d.format;
  o["error"] = text_or_null(d.error);
  o["created_at"] = iso_time(d.created_at);
  return o;
}

struct UploadInput {
  std::string_view bytes;
  std::string filename;
  std::string email;
};

Result<UploadInput> read_upload(const RequestContext& c) {
  const std::string_view content_type = c.header("Content-Type");
  UploadInput in;
  // The address comes from ?email= with either kind of body, or from a multipart `email` field,
  // which wins; empty is the same as none (an HTML form's empty field). Every address given must
  // be valid, also one that the other replaces: nothing the client sent is silently dropped.
  const auto take_email = [&in](std::string_view address) -> Status {
    if (address.empty()) return {};
    if (!mail_format::is_valid_address(address)) {
      return make_error(ErrorKind::kInvalidArgument, "email is not a valid address");
    }
    in.email = std::string(address);
    return {};
  };
  if (Status s = take_email(c.query_value("email").value_or("")); !s) return s.error();
  if (content_type.starts_with("multipart/")) {
    Result<std::vector<http::FormPart>> parts =
        http::parse_multipart(content_type, c.request.body());
    if (!parts) return parts.error();
    const http::FormPart* file = nullptr;
    for (const http::FormPart& p : *parts) {
      if (p.name == "email" && p.filename.empty()) {
        if (Status s = take_email(p.data); !s) return s.error();
      } else if (file == nullptr || (file->filename.empty() && !p.filename.empty())) {
        file = &p;
      }
    }
    if (file == nullptr) {
      return make_error(ErrorKind::kInvalidArgument, "the form has no file part");
    }
    in.bytes = file->data;
    in.filename = file->filename;
  } else {
    // A raw body: whatever its declared type, the bytes are sniffed.
    in.bytes = c.request.body();
    in.filename = c.query_value("filename").value_or(c.header("X-Filename"));
  }
  return in;
}

}  // namespace

uint64_t upload_body_limit(const imaging::Limits& limits) { return limits.max_bytes + 64 * 1024; }

std::string image_json(const ImageRecord& image, bool with_dithers, const LinkPolicy& links) {
  json::object o = image_object(image, links);
  if (with_dithers) {
    json::array dithers;
    for (const DitherSummary& d : image.dithers) dithers.push_back(summary_object(d, links));
    o["dithers"] = std::move(dithers);
  }
  return json::serialize(o);
}

http::Router upload_routes(UploadService& service, LinkPolicy links) {
  http::Router router;
  router.add(
      http::Verb::post, "/images",
      with_caller([&service, links](const RequestContext& c, const Caller& caller) -> Response {
        Result<UploadInput> in = read_upload(c);
        if (!in) return http::error_response(in.error());
        const auto* data = reinterpret_cast<const uint8_t*>(in->bytes.data());
        Refusal refusal;  // a quota's or the queue's (code set), answered as such
        Result<ImageRecord> r = service.upload({data, in->bytes.size()}, in->filename, in->email,
                                               caller, c.traceparent, &refusal);
        if (!r) return refused_or_error_response(r.error(), refusal);
        Response response = http::json_response(201, image_json(*r, true, links));
        // A relative reference (RFC 9110 10.2.2), resolved against the request's URL: the
        // service's own /images gives /images/<uuid>, the gateway's /api/images gives
        // /api/images/<uuid>. An absolute path would name the service's route, which the gateway
        // (where every client is) does not serve.
        response.headers.emplace_back("Location", "images/" + r->uuid.value);
        return response;
      }),
      http::Dispatch::kBlocking);

  router.add(http::Verb::get, "/images", owned_list_route(service, [links](const ImageRecord& r) {
               return image_object(r, links);
             }));

  router.add(
      http::Verb::get, "/images/{uuid}",
      with_caller([&service, links](const RequestContext& c, const Caller& caller) -> Response {
        Result<ImageRecord> r = service.get(c.param("uuid"), caller);
        if (!r) return http::error_response(r.error());
        return http::json_response(200, image_json(*r, true, links));
      }));

  router.add(http::Verb::delete_, "/images/{uuid}",
             with_caller([&service](const RequestContext& c, const Caller& caller) -> Response {
               Result<ImageRecord> r = service.remove(c.param("uuid"), caller, c.traceparent);
               if (!r) return http::error_response(r.error());
               json::object o;
               o["uuid"] = r->uuid.value;
               o["deleted"] = true;
               return http::json_response(200, json::serialize(o));
             }),
             http::Dispatch::kBlocking);

  router.add(http::Verb::get, "/health", [&service](const RequestContext&) -> Response {
    return health_response("upload", service.health());
  });
  add_outbox_routes(router, service.outbox());  // admins: parked outbox messages
  return router;
}

}  // namespace dither
