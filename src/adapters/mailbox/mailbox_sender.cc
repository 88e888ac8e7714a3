#include "adapters/mailbox/mailbox_sender.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <span>

#include "common/hash.h"
#include "mail/rfc5322.h"

namespace dither {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kExtension = ".eml";
constexpr size_t kMaxReadable = 100;

// "20261130T120000.123Z": sorts by time, and has no '-' (the name's separator).
std::string file_timestamp(std::chrono::system_clock::time_point now) {
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[80];
  std::snprintf(buffer, sizeof buffer, "%04d%02d%02dT%02d%02d%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis % 1000));
  return buffer;
}

}  // namespace

MailboxSender::MailboxSender(fs::path dir) : dir_(std::move(dir)), files_(dir_, "") {
  files_.remove_temporaries();
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
    const std::string file = entry.path().filename().string();
    const size_t dash = file.find('-');
    if (!entry.is_regular_file() || dash == std::string::npos || !file.ends_with(kExtension)) {
      continue;
    }
    std::string safe = file.substr(dash + 1, file.size() - dash - 1 - kExtension.size());
    // Two files for one name (copied in by hand): the newer wins, as the names sort by time.
    auto [it, inserted] = file_of_.try_emplace(safe, file);
    if (!inserted && it->second < file) it->second = file;
  }
}

std::string MailboxSender::safe_name(std::string_view message_id) {
  std::string readable;
  for (char c : message_id) {
    if (readable.size() == kMaxReadable) break;
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' ||
                      (c == '.' && !readable.empty() && readable.back() != '.');
    if (keep) {
      readable += c;
    } else if (c == '@') {
      readable += '_';
    }
  }
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a(message_id)));
  return readable.empty() ? std::string(hash) : readable + "-" + hash;
}

fs::path MailboxSender::path_of(std::string_view message_id) const {
  std::lock_guard lock(mutex_);
  const auto it = file_of_.find(safe_name(message_id));
  return it == file_of_.end() ? fs::path() : dir_ / it->second;
}

Status MailboxSender::send(const Mail& mail) {
  Mail stored = mail;
  if (stored.message_id.empty()) {
    Result<mail_format::Mailbox> from = mail_format::parse_mailbox(mail.from);
    if (!from) return make_error(ErrorKind::kInvalidArgument, "From: " + from.error().message);
    stored.message_id =
        mail_format::random_message_id(from->address.substr(from->address.rfind('@') + 1));
  }
  Result<std::string> text = mail_format::to_rfc5322(stored);
  if (!text) return text.error();

  const std::string safe = safe_name(stored.message_id);
  std::lock_guard lock(mutex_);
  auto it = file_of_.find(safe);
  const std::string file = it != file_of_.end() ? it->second
                                                : file_timestamp(std::chrono::system_clock::now()) +
                                                      "-" + safe + std::string(kExtension);
  const auto* bytes = reinterpret_cast<const uint8_t*>(text->data());
  if (Status written =
          files_.put(ObjectKey{file}, std::span(bytes, text->size()), "message/rfc822");
      !written) {
    return written;
  }
  file_of_.insert_or_assign(safe, file);
  Result<mail_format::Mailbox> to = mail_format::parse_mailbox(stored.to);
  spdlog::info("mailbox: mail to {} \"{}\" written to {}", mail_format::mask_email(to->address),
               stored.subject, (dir_ / file).string());
  return {};
}

Result<int> MailboxSender::erase_image(std::string_view uuid) {
  // safe_name() keeps "dither-<uuid>-" of a Message-ID "<dither-<uuid>-<id>-<kind>@host>".
  const std::string marker = "dither-" + std::string(uuid) + "-";
  std::lock_guard lock(mutex_);
  int removed = 0;
  for (auto it = file_of_.begin(); it != file_of_.end();) {
    if (!it->first.starts_with(marker)) {
      ++it;
      continue;
    }
    std::error_code ec;
    std::filesystem::remove(dir_ / it->second, ec);
    if (ec)
      return make_error(ErrorKind::kUnavailable, "cannot remove a stored mail: " + ec.message());
    ++removed;
    it = file_of_.erase(it);
  }
  return removed;
}

}  // namespace dither
