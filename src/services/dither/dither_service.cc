#include "services/dither/dither_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <system_error>

#include "common/utf8.h"
#include "http/url_decode.h"
#include "messaging/events.h"
#include "observability/log_context.h"
#include "observability/logging.h"
#include "observability/metrics.h"
#include "observability/tracing.h"
#include "pipeline/pipeline.h"
#include "services/common/message_trace.h"

namespace dither {
namespace {

namespace json = boost::json;

constexpr std::string_view kRequestPrefix = "request:";

}  // namespace

Result<pipeline::ProcessOptions> AutoDither::resolve() const {
  pipeline::ProcessOptions base;
  if (!preset.empty()) {
    const pipeline::BuiltinPreset* p = pipeline::find_builtin_preset(preset);
    if (p == nullptr) {
      std::string known;
      for (const pipeline::BuiltinPreset& b : pipeline::builtin_presets()) {
        known += (known.empty() ? "" : ", ") + std::string(b.name);
      }
      return make_error(ErrorKind::kInvalidArgument,
                        "no built-in preset '" + preset + "' (known: " + known + ")");
    }
    base = pipeline::preset_options(*p);
  }
  return pipeline::parse_request_options(options, std::move(base));
}

namespace {

bool pairs_name_format(const pipeline::OptionPairs& pairs) {
  return std::any_of(pairs.begin(), pairs.end(), [](const auto& p) { return p.first == "format"; });
}

bool preset_names_format(const pipeline::BuiltinPreset& preset) {
  Result<pipeline::OptionPairs> pairs = parse_option_query(preset.options);
  return pairs && pairs_name_format(*pairs);
}

}  // namespace

bool AutoDither::names_format() const {
  if (pairs_name_format(options)) return true;
  const pipeline::BuiltinPreset* p =
      preset.empty() ? nullptr : pipeline::find_builtin_preset(preset);
  return p != nullptr && preset_names_format(*p);
}

int AutoDither::channels() const {
  int n = 2;  // the prototype's, when the options do not say
  for (const auto& [name, value] : options) {
    if (name == "channels") n = std::atoi(value.c_str());  // checked by resolve()
  }
  return n;
}

namespace {

// What a failed dither's record (public: the API, the mail) says. What is wrong with the image
// or the options is the owner's to know; what went wrong inside (a storage service's answer, a
// path, an address) stays in the log (docs/SECURITY.md).
std::string public_reason(const Error& error) {
  switch (error.kind) {
    case ErrorKind::kInvalidArgument:
    case ErrorKind::kUnsupported:
    case ErrorKind::kUndecodable:
    case ErrorKind::kTooManyPixels:
    case ErrorKind::kTooLarge:
    case ErrorKind::kNotFound:
      return error.message;
    default:
      return "the dither could not be stored or its original read (an error on our side)";
  }
}

}  // namespace

Result<DitherId> parse_dither_id(std::string_view text) {
  int64_t value = 0;
  const bool digits =
      !text.empty() && text.size() <= 19 &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) value = 0;
  }
  if (value <= 0) {
    return make_error(ErrorKind::kInvalidArgument,
                      "'" + std::string(text.substr(0, 64)) +
                          "' is not a dither id (expected a positive integer)");
  }
  return DitherId{value};
}

Result<pipeline::OptionPairs> parse_option_query(std::string_view text) {
  pipeline::OptionPairs pairs;
  while (!text.empty()) {
    const size_t amp = text.find('&');
    const std::string_view item = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return make_error(ErrorKind::kInvalidArgument,
                        "'" + std::string(item) + "' is not name=value");
    }
    // The one percent-decoder of requests (http/url_decode.h): a malformed escape is an error.
    Result<std::string> name = http::percent_decode(item.substr(0, eq), true);
    Result<std::string> value = http::percent_decode(item.substr(eq + 1), true);
    if (!name || !value) {
      return make_error(
          ErrorKind::kInvalidArgument,
          "'" + std::string(item) + "' has a '%' that is not followed by two hex digits");
    }
    pairs.emplace_back(std::move(*name), std::move(*value));
  }
  return pairs;
}

DitherService::DitherService(DitherRepository& dithers, BlobStore& blobs, Topics topics,
                             imaging::Limits limits, AutoDither auto_dither,
                             std::function<void()> outbox_written, std::function<void()> work_added,
                             Quotas quotas)
    : dithers_(dithers),
      blobs_(blobs),
      topics_(std::move(topics)),
      limits_(limits),
      auto_(std::move(auto_dither)),
      outbox_written_(std::move(outbox_written)),
      work_added_(std::move(work_added)),
      quotas_(quotas),
      auto_options_(auto_.resolve()),
      auto_names_format_(auto_.names_format()) {}

Result<pipeline::ProcessOptions> DitherService::options_of(const DitherRecord& dither) {
  // The canonical form the record was made with (make_record): read, not judged again.
  Result<pipeline::ProcessOptions> options = pipeline::options_from_json(dither.options_json);
  if (!options) {
    return make_error(ErrorKind::kInternal, "stored options of dither " +
                                                std::to_string(dither.id.value) + " are corrupt");
  }
  return options;
}

std::string_view DitherService::source_of(const DitherRecord& dither) {
  // Automatic dithers carry the IMAGE_UPLOADED message id (DitherRepository::record_original).
  return dither.request_id.starts_with(kRequestPrefix) ? "request" : "auto";
}

void DitherService::follow_animation(pipeline::ProcessOptions& options, bool names_format,
                                     const OriginalRecord& original) {
  if (names_format || original.frames <= 1) return;
  using imaging::InputFormat;
  using imaging::OutputFormat;
  if (original.content_type == imaging::content_type(InputFormat::kWebp)) {
    options.format = OutputFormat::kWebp;
  } else if (original.content_type == imaging::content_type(InputFormat::kGif)) {
    // levels:N has N^3 colours: past 6 levels more than a GIF's 256.
    const engine::PaletteSpec& p = options.palette;
    const bool fits =
        p.kind != engine::PaletteSpec::Kind::kLevels || p.count * p.count * p.count <= 256;
    options.format = fits ? OutputFormat::kGif : OutputFormat::kWebp;
  }
}

DitherRecord DitherService::make_record(const ImageId& uuid,
                                        const pipeline::ProcessOptions& options, int channels,
                                        std::string request_id,
                                        std::string_view traceparent) const {
  DitherRecord record;
  record.uuid = uuid;
  record.channels = channels;
  record.algorithm = std::string(engine::algorithm_name(options.dither.algorithm));
  record.palette = options.palette.to_string();
  record.format = std::string(imaging::to_string(options.format));
  record.options_json = pipeline::canonical_json(options);
  record.status = std::string(kStatusPending);
  record.request_id = std::move(request_id);
  record.traceparent = std::string(traceparent);
  return record;
}

Result<pipeline::ProcessOptions> DitherService::request_options(
    std::string_view channels, const pipeline::OptionPairs& options, const Caller& caller,
    bool& names_format) {
  pipeline::ProcessOptions base;
  if (Status s = pipeline::set_option(base, "channels", channels); !s) return s.error();
  pipeline::OptionPairs given;
  std::optional<std::string> preset;
  for (const auto& [name, value] : options) {
    if (name == "channels") {
      return make_error(ErrorKind::kInvalidArgument,
                        "channels is given by the path: POST /images/{uuid}/{channels}");
    }
    if (name != "preset") {
      given.emplace_back(name, value);
    } else {
      preset = value;  // as for every option, a later value wins (the body's over the query's)
    }
  }
  if (presets_only_ && (!preset || !given.empty())) {
    return make_error(ErrorKind::kInvalidArgument,
                      "this server makes presets only (PRESETS_ONLY): give preset=NAME and no "
                      "other option; GET /api/presets lists them");
  }
  names_format = pairs_name_format(given);
  if (preset) {
    if (const pipeline::BuiltinPreset* builtin = pipeline::find_builtin_preset(*preset)) {
      base = pipeline::preset_options(*builtin);
      names_format = names_format || preset_names_format(*builtin);
    } else {
      Result<PresetRecord> own = dithers_.get_preset(caller.owner, *preset);
      if (!own && own.error().kind == ErrorKind::kNotFound) {
        return make_error(ErrorKind::kInvalidArgument,
                          "option 'preset': no preset '" + preset->substr(0, 64) +
                              "' (GET /api/presets lists yours and the built-in ones)");
      }
      if (!own) return own.error();
      Result<pipeline::ProcessOptions> stored = pipeline::options_from_json(own->options_json);
      if (!stored) return make_error(ErrorKind::kInternal, "a stored preset is corrupt");
      base = std::move(*stored);
      // An owner's preset is stored complete, format included, so a PNG there may be only the
      // default: it leaves an animation its own format. GIF or WebP was chosen.
      names_format = names_format || base.format != imaging::OutputFormat::kPng;
    }
  }
  return pipeline::parse_request_options(given, std::move(base));
}

Result<OriginalRecord> DitherService::reachable_original(const ImageId& uuid,
                                                         const Caller& caller) {
  Result<OriginalRecord> original = dithers_.get_original(uuid);
  if ((!original && original.error().kind == ErrorKind::kNotFound) ||
      (original && !caller.may_reach(original->owner))) {
    return make_error(ErrorKind::kNotFound, "no image " + uuid.value);
  }
  return original;
}

Result<DitherRecord> DitherService::request(std::string_view uuid, std::string_view channels,
                                            const pipeline::OptionPairs& options,
                                            std::string_view request_id, const Caller& caller,
                                            std::string_view traceparent, Refusal* refused) {
  Result<ImageId> id = parse_image_id(uuid);
  if (!id) return id.error();
  bool names_format = false;
  Result<pipeline::ProcessOptions> parsed =
      request_options(channels, options, caller, names_format);
  if (!parsed) return parsed.error();
  Result<OriginalRecord> original = reachable_original(*id, caller);
  if (!original) return original.error();
  follow_animation(*parsed, names_format, *original);
  DitherRecord record =
      make_record(*id, *parsed, std::atoi(std::string(channels).c_str()),
                  std::string(kRequestPrefix) + std::string(request_id), traceparent);
  record.owner = original->owner;
  record.requested_by = caller.owner;
  Result<std::optional<Refusal>> refusal = admit(*id, record.request_id, caller);
  if (!refusal) return refusal.error();
  if (refusal->has_value()) {
    if (refused != nullptr) *refused = **refusal;
    return (*refusal)->error();
  }
  Result<DitherRecord> created = dithers_.create_dither(record);
  if (created && work_added_) work_added_();
  return created;
}

Result<std::optional<Refusal>> DitherService::admit(const ImageId& uuid,
                                                    std::string_view request_id,
                                                    const Caller& caller) {
  const bool quotas =
      !caller.admin && (quotas_.dithers_per_image > 0 || quotas_.pending_dithers > 0);
  if (!quotas && quotas_.max_pending_dithers <= 0) return std::optional<Refusal>{};
  Result<std::vector<DitherRecord>> existing = dithers_.dithers_of(uuid);
  if (!existing) return existing.error();
  // The same request again returns its dither (idempotency), whatever the counts say now.
  for (const DitherRecord& d : *existing) {
    if (d.request_id == request_id) return std::optional<Refusal>{};
  }
  // The most lasting reason first: waiting does not lift the image's quota.
  if (!caller.admin && quotas_.dithers_per_image > 0 &&
      static_cast<int64_t>(existing->size()) >= quotas_.dithers_per_image) {
    return std::optional<Refusal>(Refusal::quota_exceeded(
        "dither quota of this image reached: it has " + std::to_string(existing->size()) +
        " dithers, the limit is " + std::to_string(quotas_.dithers_per_image) +
        " (QUOTA_DITHERS_PER_IMAGE); delete some of its dithers to make more"));
  }
  if (!caller.admin && quotas_.pending_dithers > 0) {
    Result<int64_t> pending = dithers_.count_pending(caller.owner);
    if (!pending) return pending.error();
    if (*pending >= quotas_.pending_dithers) {
      return std::optional<Refusal>(Refusal::too_many_pending(
          "too many dithers waiting: you have " + std::to_string(*pending) +
          " dithers pending, the limit is " + std::to_string(quotas_.pending_dithers) +
          " (QUOTA_PENDING_DITHERS); try again when some are finished"));
    }
  }
  if (quotas_.max_pending_dithers > 0) {
    Result<int64_t> depth = dithers_.count_pending("");
    if (!depth) return depth.error();
    if (*depth >= quotas_.max_pending_dithers) {
      return std::optional<Refusal>(Refusal::queue_full(
          "the dither queue is full (" + std::to_string(*depth) + " dithers waiting, at most " +
          std::to_string(quotas_.max_pending_dithers) + "); try again later"));
    }
  }
  return std::optional<Refusal>{};
}

Result<Page<DitherRecord>> DitherService::list(const PageRequest& page) {
  return dithers_.list_dithers(page);
}

Result<std::vector<DitherRecord>> DitherService::dithers_of(std::string_view uuid,
                                                            const Caller& caller) {
  Result<ImageId> id = parse_image_id(uuid);
  if (!id) return id.error();
  if (Result<OriginalRecord> original = reachable_original(*id, caller); !original) {
    return original.error();
  }
  return dithers_.dithers_of(*id);
}

Status DitherService::remove_blobs(const std::vector<DitherRecord>& dithers) {
  for (const DitherRecord& d : dithers) {
    // The key is fixed per dither, so even a PENDING one being worked on right now is covered:
    // the worker deletes its own result when it finds the row gone.
    const ObjectKey key = d.blob_key.value.empty()
                              ? ObjectKey{"dithers/" + d.uuid.value + "/" +
                                          std::to_string(d.id.value) + "." + d.format}
                              : d.blob_key;
    if (Status s = blobs_.remove(key); !s) return s;
    if (Status s = blobs_.remove(thumbnail_key_of(key)); !s) return s;
  }
  return {};
}

Result<int> DitherService::remove_dithers(std::string_view uuid, const Caller& caller,
                                          std::string_view traceparent) {
  Result<ImageId> id = parse_image_id(uuid);
  if (!id) return id.error();
  if (Result<OriginalRecord> original = reachable_original(*id, caller); !original) {
    return original.error();
  }
  // Blobs first: if the process dies in between, the rows remain and a retry finishes the job.
  Result<std::vector<DitherRecord>> existing = dithers_.dithers_of(*id);
  if (!existing) return existing.error();
  if (Status s = remove_blobs(*existing); !s) return s.error();
  Message deleted =
      make_message(topics_.dither, kDitherDeleted, id->value, uuid_body(*id), traceparent);
  trace_publish(tracer_, deleted, traceparent);
  Result<std::vector<DitherRecord>> removed = dithers_.delete_dithers_of(*id, deleted, false, "");
  if (!removed) return removed.error();
  if (Status s = remove_blobs(*removed); !s) return s.error();
  if (!removed->empty() && outbox_written_) outbox_written_();
  return static_cast<int>(removed->size());
}

Result<DitherRecord> DitherService::remove_dither(std::string_view uuid, DitherId dither_id,
                                                  const Caller& caller,
                                                  std::string_view traceparent) {
  Result<ImageId> id = parse_image_id(uuid);
  if (!id) return id.error();
  if (dither_id.value <= 0) {
    return make_error(ErrorKind::kInvalidArgument,
                      "'" + std::to_string(dither_id.value) + "' is not a dither id");
  }
  if (Result<OriginalRecord> original = reachable_original(*id, caller); !original) {
    return original.error();
  }
  const auto not_found = [&] {
    return make_error(ErrorKind::kNotFound,
                      "no dither " + std::to_string(dither_id.value) + " of image " + id->value);
  };
  Result<DitherRecord> existing = dithers_.get_dither(dither_id);
  if (!existing) {
    return existing.error().kind == ErrorKind::kNotFound ? not_found() : existing.error();
  }
  if (existing->uuid != *id) return not_found();  // another image's: nothing is touched
  // Blobs first, as remove_dithers: if the process dies in between, the row remains and a retry
  // finishes the job.
  if (Status s = remove_blobs({*existing}); !s) return s.error();
  Message deleted = make_message(topics_.dither, kDitherDeleted, id->value,
                                 dither_deleted_body({*id, dither_id.value}), traceparent);
  trace_publish(tracer_, deleted, traceparent);
  Result<DitherRecord> removed = dithers_.delete_dither(*id, dither_id, deleted);
  if (!removed) {
    return removed.error().kind == ErrorKind::kNotFound ? not_found() : removed.error();
  }
  // A worker may have finished it between the two steps: its result has the same key.
  if (Status s = remove_blobs({*removed}); !s) return s.error();
  if (outbox_written_) outbox_written_();
  return removed;
}

Result<std::vector<PresetRecord>> DitherService::presets(const Caller& caller) {
  std::vector<PresetRecord> out;
  for (const pipeline::BuiltinPreset& p : pipeline::builtin_presets()) {
    PresetRecord r;
    r.owner = "";  // built-in
    r.name = std::string(p.name);
    r.description = std::string(p.description);
    r.options_json =
        pipeline::canonical_json(pipeline::preset_options(p));  // complete, as a request applies it
    out.push_back(std::move(r));
  }
  Result<std::vector<PresetRecord>> own = dithers_.presets_of(caller.admin ? "" : caller.owner);
  if (!own) return own.error();
  out.insert(out.end(), own->begin(), own->end());
  return out;
}

Status DitherService::presets_may_change(const Caller& caller, Refusal* refused) const {
  if (!presets_only_ || caller.admin) return {};
  Refusal r{403, "forbidden",
            "this server makes presets only (PRESETS_ONLY): only admins save or delete presets", 0};
  if (refused != nullptr) *refused = r;
  return r.error();
}

Result<PresetRecord> DitherService::save_preset(std::string_view name, std::string_view description,
                                                const pipeline::OptionPairs& options,
                                                const Caller& caller, bool* replaced,
                                                Refusal* refused) {
  if (Status s = presets_may_change(caller, refused); !s) return s.error();
  if (Status s = pipeline::check_preset_name(name, true); !s) return s.error();
  if (code_points(description) > 200) {
    return make_error(ErrorKind::kInvalidArgument,
                      "a preset's description is at most 200 characters");
  }
  for (const auto& [option, value] : options) {
    const pipeline::OptionInfo* o = pipeline::find_option(option);
    if (o != nullptr && o->scope == pipeline::OptionScope::kPath) {
      return make_error(ErrorKind::kInvalidArgument,
                        "a preset names its palette: use palette=levels:N instead of channels");
    }
    if (option == "preset") {
      return make_error(ErrorKind::kInvalidArgument, "a preset cannot name another preset");
    }
  }
  Result<pipeline::ProcessOptions> parsed = pipeline::parse_request_options(options);
  if (!parsed) return parsed.error();
  if (!caller.admin && quotas_.presets > 0) {
    Result<std::vector<PresetRecord>> mine = dithers_.presets_of(caller.owner);
    if (!mine) return mine.error();
    const bool exists = std::any_of(mine->begin(), mine->end(),
                                    [&](const PresetRecord& p) { return p.name == name; });
    if (!exists && static_cast<int64_t>(mine->size()) >= quotas_.presets) {
      Refusal r =
          Refusal::quota_exceeded("preset quota reached: you have " + std::to_string(mine->size()) +
                                  " presets, the limit is " + std::to_string(quotas_.presets) +
                                  " (QUOTA_PRESETS); delete one to save another");
      if (refused != nullptr) *refused = r;
      return r.error();
    }
  }
  PresetRecord preset;
  preset.owner = caller.owner;
  preset.name = std::string(name);
  preset.description = std::string(description);
  preset.options_json = pipeline::canonical_json(*parsed);
  return dithers_.put_preset(preset, replaced);
}

Status DitherService::delete_preset(std::string_view name, const Caller& caller, Refusal* refused) {
  if (Status s = presets_may_change(caller, refused); !s) return s;
  if (pipeline::find_builtin_preset(name) != nullptr) {
    Refusal r{403, "forbidden", "built-in presets cannot be deleted", 0};
    if (refused != nullptr) *refused = r;
    return r.error();
  }
  Result<bool> removed = dithers_.delete_preset(caller.owner, name);
  if (!removed) return removed.error();
  if (!*removed) {
    return make_error(ErrorKind::kNotFound, "no preset '" + std::string(name.substr(0, 64)) + "'");
  }
  return {};
}

Result<int> DitherService::canonicalize_stored_options() {
  int rewritten = 0;
  for (;;) {
    Result<std::vector<DitherRecord>> batch = dithers_.legacy_options(200);
    if (!batch) return batch.error();
    if (batch->empty()) return rewritten;
    for (const DitherRecord& d : *batch) {
      // What an older version stored: the options as asked for, `channels` among them.
      Result<pipeline::ProcessOptions> options = pipeline::options_from_json(d.options_json);
      std::string canonical = d.options_json;
      if (options) {
        canonical = pipeline::canonical_json(*options);
      } else {
        // Kept as they are (and no longer offered again); a PENDING one fails when made.
        spdlog::warn("dither {}: stored options no longer read ({}); kept as they are", d.id.value,
                     options.error().message);
      }
      Result<bool> done = dithers_.set_canonical_options(d.id, canonical);
      if (!done) return done.error();
      ++rewritten;
    }
  }
}

Status DitherService::on_image_message(const Message& message) {
  // The automatic dither, and what the message causes, continue this span's trace.
  const observability::Span span = trace_consume(tracer_, message);
  const std::string_view type = message.message_type();
  if (type == kImageUploaded) {
    Result<ImageUploadedEvent> e = read_image_uploaded(message.body);
    if (!e) return e.error();
    OriginalRecord original{e->uuid,  e->url,   e->filename,     e->blob_key,
                            e->email, e->owner, e->content_type, e->frames};
    std::optional<DitherRecord> auto_dither;
    if (auto_.enabled) {
      if (!auto_options_) return auto_options_.error();  // config.cc checked it at start-up
      pipeline::ProcessOptions options = *auto_options_;
      follow_animation(options, auto_names_format_, original);
      DitherRecord r =
          make_record(e->uuid, options, auto_.channels(), message.dedupe_id(), span.traceparent());
      r.owner = e->owner;
      r.requested_by = e->owner;  // the upload asked for it
      auto_dither = std::move(r);
    }
    Result<std::optional<DitherRecord>> created =
        dithers_.record_original(original, auto_dither, message.dedupe_id());
    if (!created) return created.error();
    if (created->has_value() && work_added_) work_added_();
    return {};
  }
  if (type == kImageDeleted) {
    Result<ImageId> uuid = read_uuid(message.body);
    if (!uuid) return uuid.error();
    Result<std::vector<DitherRecord>> existing = dithers_.dithers_of(*uuid);
    if (!existing) return existing.error();
    if (Status s = remove_blobs(*existing); !s) return s;
    Message deleted = make_message(topics_.dither, kDitherDeleted, uuid->value, uuid_body(*uuid),
                                   span.traceparent());
    trace_publish(tracer_, deleted, span.traceparent());
    Result<std::vector<DitherRecord>> removed =
        dithers_.delete_dithers_of(*uuid, deleted, true, message.dedupe_id());
    if (!removed) return removed.error();
    if (Status s = remove_blobs(*removed); !s) return s;
    if (!removed->empty() && outbox_written_) outbox_written_();
    return {};
  }
  return {};
}

DitherEvent DitherService::event_of(const DitherRecord& dither,
                                    const Result<OriginalRecord>& original) {
  DitherEvent event;
  event.uuid = dither.uuid;
  event.dither_id = dither.id.value;
  event.channels = dither.channels;
  event.algorithm = dither.algorithm;
  event.palette = dither.palette;
  event.format = dither.format;
  event.source = std::string(source_of(dither));
  event.owner = dither.owner;
  if (original) {
    event.owner = original->owner;
    // Mail only where it was asked for: the upload's owner asked for this dither.
    if (dither.requested_by == original->owner) event.email = original->email;
    event.url = original->url;
    event.filename = original->filename;
  }
  return event;
}

Status DitherService::give_up(const DitherRecord& dither, std::string_view reason) {
  Result<OriginalRecord> original = dithers_.get_original(dither.uuid);
  if (!original && original.error().kind != ErrorKind::kNotFound) return original.error();
  DitherEvent event = event_of(dither, original);
  event.error = std::string(reason);
  Message failed = make_message(topics_.dither, kDitherFailed, dither.uuid.value,
                                dither_event_body(event, true), dither.traceparent);
  trace_publish(tracer_, failed, dither.traceparent);
  Result<bool> changed = dithers_.fail_dither(dither.id, event.error, failed);
  if (!changed) return changed.error();
  spdlog::warn("dither {} of {} failed: {}", dither.id.value, dither.uuid.value, event.error);
  if (*changed && outbox_written_) outbox_written_();
  return {};
}

// What set_metrics() records: dithers by algorithm and outcome, each stage's time, the queue's
// depth.
struct DitherService::Recorded {
  explicit Recorded(observability::Metrics& metrics)
      : dithers(metrics.counter("dithers_total", "Dithers made, by algorithm and outcome.",
                                {"algorithm", "outcome"})),
        stages(metrics.histogram(
            "stage_duration_seconds",
            "Time of each stage of a dither: queued (from its request to a worker), read (the "
            "original), decode, dither, encode, store (the result).",
            {"stage"}, observability::kStageBuckets)),
        pending(metrics.gauge("pending_dithers", "Dithers waiting or being made (the queue).")
                    .with({})),
        oldest(metrics
                   .gauge("oldest_pending_dither_age_seconds",
                          "Age of the oldest dither waiting or being made (0 when none).")
                   .with({})) {}
  observability::CounterFamily dithers;
  observability::HistogramFamily stages;
  prometheus::Gauge& pending;
  prometheus::Gauge& oldest;
};

DitherService::~DitherService() = default;

void DitherService::set_metrics(observability::Metrics& metrics) {
  recorded_ = std::make_unique<Recorded>(metrics);
  // The queue's depth and age when scraped: two reads of the PENDING rows' index, none per
  // dither.
  metrics.on_scrape([this, &gauge = recorded_->pending, &oldest = recorded_->oldest] {
    if (Result<int64_t> depth = dithers_.count_pending(""); depth) {
      gauge.Set(static_cast<double>(*depth));
    }
    if (Result<int64_t> at = dithers_.oldest_pending_at(); at) {
      oldest.Set(*at > 0 ? static_cast<double>(std::max<int64_t>(0, now_millis() - *at)) / 1000.0
                         : 0.0);
    }
  });
}

namespace {

// The span of one dither being made (docs/TRACING.md), under the context it was requested in.
observability::Span job_span(observability::Tracer* tracer, const DitherRecord& dither,
                             int64_t queued_ms) {
  observability::Span span = observability::start_span(
      tracer, "dither job", observability::SpanKind::kInternal, dither.traceparent);
  span.set("dither.id", dither.id.value)
      .set("dither.image", dither.uuid.value)
      .set("dither.algorithm", dither.algorithm)
      .set("dither.source", DitherService::source_of(dither))
      .set("dither.queued_ms", queued_ms);
  return span;
}

// The pipeline's stages as spans under `job`, placed from the durations pipeline::process()
// measured (its stages run inside it; decode and dither overlap on two threads when the dither
// follows the decoder): decode from the start, encode up to the end, the dither just before.
void stage_spans(const observability::Span& job, int64_t start, const pipeline::StageTimes& t) {
  if (!job.recording()) return;
  const int64_t end = observability::unix_nano_now();
  const auto ns = [](double seconds) { return static_cast<int64_t>(seconds * 1e9); };
  const int64_t encoding = std::max(start, end - ns(t.encode));
  job.child("decode", observability::SpanKind::kInternal, start)
      .end(std::min(end, start + ns(t.decode)));
  observability::Span work = job.child("dither", observability::SpanKind::kInternal,
                                       std::max(start, encoding - ns(t.dither + t.waited)));
  work.set("dither.waited_for_rows_ms", static_cast<int64_t>(t.waited * 1e3));
  work.end(encoding);
  job.child("encode", observability::SpanKind::kInternal, encoding).end(end);
}

}  // namespace

Status DitherService::process(const DitherRecord& dither) {
  // Where the time goes (logged when it finished; scripts/bench/services.py reads it): the wait
  // in the queue since the row was made, then each stage of this run.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point started = Clock::now();
  const int64_t queued_ms = std::max<int64_t>(0, now_millis() - dither.created_at);
  const auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  observability::Span span = job_span(tracer_, dither, queued_ms);
  const std::string context = span.traceparent();  // what its messages continue
  const observability::ScopedLogContext log_scope(
      observability::log_context_from(observability::current_log_context().request_id, context));
  double read_ms = 0;
  Result<pipeline::ProcessOptions> options = options_of(dither);
  Result<OriginalRecord> original = dithers_.get_original(dither.uuid);
  Result<pipeline::Processed> result = make_error(ErrorKind::kInternal, "not run");
  if (!options) {
    result = options.error();
  } else if (!original) {
    result = original.error().kind == ErrorKind::kNotFound
                 ? make_error(ErrorKind::kNotFound, "the original image was deleted")
                 : original.error();
  } else {
    const Clock::time_point reading = Clock::now();
    observability::Span read_span = span.child("read");
    Result<std::vector<uint8_t>> bytes =
        !original->blob_key.value.empty() ? blobs_.get(original->blob_key)
        : fetcher_ != nullptr
            ? fetcher_->fetch(original->url, static_cast<uint64_t>(limits_.max_bytes))
            : Result<std::vector<uint8_t>>(
                  make_error(ErrorKind::kUnsupported,
                             "the original is only known by URL and fetching is off"));
    read_span.end();
    if (!bytes && original->blob_key.value.empty() && fetcher_ != nullptr) {
      // The URL came in a message: what its server said, or which address was refused, goes to
      // the log only; the public record says no more than this (docs/SECURITY.md "URL fetcher").
      // kUnavailable is retried, and logged, by the workers (the fetcher gives up after a bounded
      // number of attempts).
      if (bytes.error().kind == ErrorKind::kUnavailable) {
        result = bytes.error();
      } else {
        spdlog::warn("dither {} of {}: could not fetch the original: {}", dither.id.value,
                     dither.uuid.value, bytes.error().message);
        result = make_error(bytes.error().kind, "could not fetch the original");
      }
    } else if (!bytes) {
      result = bytes.error().kind == ErrorKind::kNotFound
                   ? make_error(ErrorKind::kNotFound, "the original image is gone")
                   : bytes.error();
    } else {
      read_ms = ms_since(reading);
      const int64_t processing = span.recording() ? observability::unix_nano_now() : 0;
      result = pipeline::process(*bytes, *options, limits_);
      if (result) stage_spans(span, processing, result->stages);
    }
  }
  if (!result && result.error().kind == ErrorKind::kUnavailable) {
    span.set_error("unavailable: retried later");
    return result.error();
  }

  DitherEvent event = event_of(dither, original);
  const auto count = [&](std::string_view outcome) {
    if (!recorded_) return;
    recorded_->dithers
        .with({options ? engine::algorithm_name(options->dither.algorithm) : "unknown", outcome})
        .Increment();
  };

  auto fail = [&](const Error& error) -> Status {
    event.error = public_reason(error);
    if (event.error != error.message) {
      spdlog::warn("dither {} of {}: {}", dither.id.value, dither.uuid.value, error.message);
    }
    span.set_error(event.error);
    Message failed = make_message(topics_.dither, kDitherFailed, dither.uuid.value,
                                  dither_event_body(event, true), context);
    trace_publish(tracer_, failed, context);
    Result<bool> changed = dithers_.fail_dither(dither.id, event.error, failed);
    if (!changed) return changed.error();
    spdlog::info("dither {} of {} failed: {}", dither.id.value, dither.uuid.value, event.error);
    if (*changed) count("failed");
    if (*changed && outbox_written_) outbox_written_();
    return {};
  };
  if (!result) return fail(result.error());

  const ObjectKey key{"dithers/" + dither.uuid.value + "/" + std::to_string(dither.id.value) + "." +
                      std::string(imaging::to_string(result->format))};
  const Clock::time_point storing = Clock::now();
  observability::Span store_span = span.child("store");
  if (Status s = blobs_.put(key, result->bytes, imaging::content_type(result->format)); !s) {
    if (s.error().kind == ErrorKind::kUnavailable) return s;
    return fail(s.error());
  }
  store_span.end();
  const double store_ms = ms_since(storing);
  const Clock::time_point recording = Clock::now();
  event.url_dither = blobs_.public_url(key);
  Message uploaded = make_message(topics_.dither, kDitherUploaded, dither.uuid.value,
                                  dither_event_body(event, false), context);
  trace_publish(tracer_, uploaded, context);
  Result<bool> changed = dithers_.finish_dither(dither.id, key, event.url_dither, uploaded);
  if (!changed) return changed.error();
  if (!*changed) {
    // Not PENDING any more. When the row is gone (deleted meanwhile) the result must not outlive
    // it; when another run finished it, the blob is that run's result too (same key, same bytes).
    Result<DitherRecord> now = dithers_.get_dither(dither.id);
    if (!now && now.error().kind == ErrorKind::kNotFound) return blobs_.remove(key);
    return {};
  }
  if (outbox_written_) outbox_written_();
  const pipeline::StageTimes& t = result->stages;
  if (recorded_) {
    count("finished");
    for (const auto& [stage, seconds] :
         {std::pair<std::string_view, double>{"queued", static_cast<double>(queued_ms) / 1e3},
          {"read", read_ms / 1e3},
          {"decode", t.decode},
          {"dither", t.dither},
          {"encode", t.encode},
          {"store", store_ms / 1e3}}) {
      recorded_->stages.with({stage}).Observe(seconds);
    }
  }
  spdlog::info(
      "dither {} of {} finished in {:.1f} ms: queued {} ms, read {:.1f} ms, decode {:.1f} ms, "
      "dither {:.1f} ms (waited {:.1f} ms for rows), encode {:.1f} ms, store {:.1f} ms, record "
      "{:.1f} ms",
      dither.id.value, dither.uuid.value, ms_since(started), queued_ms, read_ms, t.decode * 1e3,
      t.dither * 1e3, t.waited * 1e3, t.encode * 1e3, store_ms, ms_since(recording));
  return {};
}

Status DitherService::health() { return dithers_.ping(); }

}  // namespace dither
