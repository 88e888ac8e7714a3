#include "adapters/cloudinary/cloudinary_blob_store.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <random>
#include <stdexcept>

#include "adapters/shared/curl_client.h"
#include "adapters/shared/object_keys.h"
#include "common/crypto.h"

namespace dither {
namespace {

// "raw": byte-exact storage with the extension kept in the public_id (see the header).
constexpr std::string_view kResourceType = "raw";
constexpr std::string_view kDefaultContentType = "application/octet-stream";

using Params = std::vector<std::pair<std::string, std::string>>;

void require_http_url(const std::string& url, std::string_view what) {
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    throw std::invalid_argument("Cloudinary " + std::string(what) + " '" + url +
                                "' must start with http:// or https://");
  }
}

std::string unix_seconds() {
  using namespace std::chrono;
  return std::to_string(duration_cast<seconds>(system_clock::now().time_since_epoch()).count());
}

std::string random_boundary() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string boundary = "dither-";
  for (int i = 0; i < 32; ++i) boundary.push_back(kHex[random() & 0xF]);
  return boundary;
}

// multipart/form-data (RFC 7578): the fields, then the file, under a random boundary that does
// not occur in the file (the fields are short values of ours).
std::string multipart_body(std::string& boundary, const Params& fields,
                           std::span<const uint8_t> file, std::string_view file_name,
                           std::string_view file_type) {
  const std::string_view file_text(reinterpret_cast<const char*>(file.data()), file.size());
  do {
    boundary = random_boundary();
  } while (file_text.find(boundary) != std::string_view::npos);
  std::string body;
  body.reserve(file.size() + 200 * (fields.size() + 1));
  auto part = [&](std::string_view name) {
    body.append("--").append(boundary);
    body.append("\r\nContent-Disposition: form-data; name=\"").append(name).append("\"");
  };
  for (const auto& [name, value] : fields) {
    part(name);
    body.append("\r\n\r\n").append(value).append("\r\n");
  }
  if (!file_name.empty()) {
    part("file");
    body.append("; filename=\"").append(file_name).append("\"\r\nContent-Type: ");
    body.append(file_type).append("\r\n\r\n");
    body.append(file_text);
    body += "\r\n";
  }
  body.append("--").append(boundary).append("--\r\n");
  return body;
}

// Cloudinary's answers are JSON objects: {"error": {"message": "..."}} or {"result": "ok"}, ...
std::string json_string(std::string_view text, std::string_view outer, std::string_view inner) {
  boost::system::error_code ec;
  const boost::json::value value = boost::json::parse(text, ec);
  if (ec || !value.is_object()) return "";
  const boost::json::value* field = value.as_object().if_contains(outer);
  if (field != nullptr && !inner.empty()) {
    field = field->is_object() ? field->as_object().if_contains(inner) : nullptr;
  }
  if (field == nullptr || !field->is_string()) return "";
  return std::string(field->as_string());
}

}  // namespace

std::string cloudinary_signature(Params params, std::string_view api_secret) {
  std::erase_if(params, [](const auto& param) {
    const std::string& name = param.first;
    return name == "file" || name == "cloud_name" || name == "resource_type" || name == "api_key" ||
           name == "signature";
  });
  std::sort(params.begin(), params.end());
  std::string to_sign;
  for (const auto& [name, value] : params) {
    if (!to_sign.empty()) to_sign += '&';
    to_sign.append(name).append("=").append(value);
  }
  to_sign.append(api_secret);
  return curl::sha1_hex(to_sign);
}

CloudinaryBlobStore::CloudinaryBlobStore(CloudinaryOptions options) : options_(std::move(options)) {
  if (options_.cloud_name.empty() || options_.api_key.empty() || options_.api_secret.empty()) {
    throw std::invalid_argument("Cloudinary needs a cloud name, an API key and an API secret");
  }
  options_.api_base = curl::without_trailing_slashes(options_.api_base);
  options_.delivery_base = curl::without_trailing_slashes(options_.delivery_base);
  require_http_url(options_.api_base, "API base URL");
  require_http_url(options_.delivery_base, "delivery base URL");
  const std::string cloud = curl::uri_encode(options_.cloud_name, false);
  api_url_ = options_.api_base + "/v1_1/" + cloud + "/" + std::string(kResourceType) + "/";
  delivery_url_ =
      options_.delivery_base + "/" + cloud + "/" + std::string(kResourceType) + "/authenticated/";
  client_ = std::make_unique<curl::Client>(curl::ClientOptions{.timeout = options_.timeout});
}

CloudinaryBlobStore::~CloudinaryBlobStore() = default;

Result<curl::Response> CloudinaryBlobStore::post(std::string_view action, Params params,
                                                 std::span<const uint8_t> file,
                                                 std::string_view file_name,
                                                 std::string_view file_type) {
  params.emplace_back("timestamp", unix_seconds());
  const std::string signature = cloudinary_signature(params, options_.api_secret);
  params.emplace_back("api_key", options_.api_key);
  params.emplace_back("signature", signature);
  std::string boundary;
  const std::string body = multipart_body(boundary, params, file, file_name, file_type);

  curl::Request request;
  request.method = "POST";
  request.url = api_url_ + std::string(action);
  request.body = std::span(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  request.headers = {"Content-Type: multipart/form-data; boundary=" + boundary,
                     // The body goes at once rather than after a 100-continue round trip.
                     "Expect:"};
  Result<curl::Response> response = client_->perform(request);
  if (!response) {
    Error error = response.error();
    error.message = (error.kind == ErrorKind::kUnavailable ? "Cloudinary unreachable: "
                                                           : "Cloudinary request failed: ") +
                    error.message;
    return error;
  }
  return response;
}

Error CloudinaryBlobStore::error_of(std::string_view what, const curl::Response& response) const {
  std::string message =
      "Cloudinary " + std::string(what) + ": HTTP " + std::to_string(response.status);
  const std::string reason = json_string(response.text(), "error", "message");
  if (!reason.empty()) message += " (" + reason + ")";
  // 420 is Cloudinary's "rate limited".
  if (response.status >= 500 || response.status == 420 || response.status == 429) {
    return make_error(ErrorKind::kUnavailable, message + "; retry later");
  }
  if (response.status == 401 || response.status == 403) {
    return make_error(ErrorKind::kInternal, message + "; check the cloud name, API key (" +
                                                options_.api_key + ") and API secret");
  }
  return make_error(ErrorKind::kInternal, std::move(message));
}

Status CloudinaryBlobStore::put(const ObjectKey& key, std::span<const uint8_t> bytes,
                                std::string_view content_type) {
  if (!is_valid_object_key(key.value)) return adapters::invalid_key(key.value);
  if (bytes.empty()) {
    return make_error(ErrorKind::kInvalidArgument,
                      "Cloudinary does not store empty files (" + key.value + ")");
  }
  const std::string_view file_name = std::string_view(key.value).substr(key.value.rfind('/') + 1);
  Result<curl::Response> response =
      post("upload",
           {{"public_id", key.value},
            {"type", "authenticated"},
            {"overwrite", "true"},
            {"invalidate", "true"}},
           bytes, file_name, content_type.empty() ? kDefaultContentType : content_type);
  if (!response) return response.error();
  if (response->status != 200) return error_of("upload of " + key.value, *response);
  const std::string stored = json_string(response->text(), "public_id", "");
  if (stored != key.value) {
    return make_error(ErrorKind::kInternal,
                      "Cloudinary stored " + key.value + " as '" + stored + "', not under its key");
  }
  return {};
}

Result<std::vector<uint8_t>> CloudinaryBlobStore::get(const ObjectKey& key) {
  if (!is_valid_object_key(key.value)) return adapters::invalid_key(key.value);
  curl::Request request;
  request.url = public_url(key);
  Result<curl::Response> response = client_->perform(request);
  if (!response) {
    Error error = response.error();
    error.message = "Cloudinary delivery: " + error.message;
    return error;
  }
  if (response->status == 200) return std::move(response->body);
  if (response->status == 404) return make_error(ErrorKind::kNotFound, "no object " + key.value);
  return error_of("delivery of " + key.value, *response);
}

Status CloudinaryBlobStore::remove(const ObjectKey& key) {
  if (!is_valid_object_key(key.value)) return adapters::invalid_key(key.value);
  Result<curl::Response> response =
      post("destroy", {{"public_id", key.value}, {"type", "authenticated"}, {"invalidate", "true"}},
           {}, "", "");
  if (!response) return response.error();
  if (response->status != 200) return error_of("destroy of " + key.value, *response);
  const std::string result = json_string(response->text(), "result", "");
  if (result == "ok" || result == "not found") return {};
  return make_error(ErrorKind::kInternal,
                    "Cloudinary destroy of " + key.value + " answered '" + result + "'");
}

std::string CloudinaryBlobStore::public_url(const ObjectKey& key) const {
  return delivery_url_ + cloudinary_delivery_signature(key.value, options_.api_secret) + "/" +
         curl::uri_encode(key.value, /*keep_slash=*/true);
}

std::string cloudinary_delivery_signature(std::string_view public_id, std::string_view api_secret) {
  const std::string hex = curl::sha1_hex(std::string(public_id) + std::string(api_secret));
  std::string digest;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    digest.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return "s--" + base64url(digest).substr(0, 8) + "--";
}

Result<std::vector<ObjectKey>> CloudinaryBlobStore::list(std::string_view /*prefix*/) {
  return make_error(ErrorKind::kUnsupported,
                    "Cloudinary blobs cannot be listed: its Admin API allows 500 requests an "
                    "hour, so the database is the index of what is stored");
}

}  // namespace dither
