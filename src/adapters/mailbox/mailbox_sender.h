// MailSender that writes each mail as an .eml file into a folder and logs one line (the embedded
// default, when no SMTP server is configured). Open the files with any mail client.
//
//   MailboxSender mailbox("data/mail");
//   mailbox.send(mail);
//   // Message-ID <dither-<uuid>-3-uploaded@example.org> ->
//   //   data/mail/20261130T120000.123Z-dither-<uuid>-3-uploaded_example.org-<16 hex>.eml
//
// A file is named <UTC time of the first send>-<name derived from the Message-ID>.eml and written
// atomically (temporary file, fsync, rename: FsBlobStore::put), so a reader sees the whole mail or
// none. Sending the same Message-ID again replaces that same file: a retried notification stays
// one file. The log line masks the recipient ("s***@example.org").
//
// Thread-safe. One MailboxSender per folder (it keeps an index of the folder's files, read at
// construction).
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <string>

#include "adapters/fs/fs_blob_store.h"
#include "ports/mail.h"

namespace dither {

class MailboxSender final : public MailSender {
 public:
  // Creates `dir` when missing (throws when it cannot: a start-up failure).
  explicit MailboxSender(std::filesystem::path dir);

  Status send(const Mail& mail) override;
  std::string_view name() const override { return "mailbox"; }
  // Deletes the files of every mail about image `uuid`.
  Result<int> erase_image(std::string_view uuid) override;

  // The file a Message-ID's mail is stored in, once sent ("" before).
  std::filesystem::path path_of(std::string_view message_id) const;
  const std::filesystem::path& dir() const { return dir_; }

  // "<dither-x-1@example.org>" -> "dither-x-1_example.org-<16 hex digits of its FNV-1a hash>":
  // only [A-Za-z0-9._-], at most 100 characters before the hash, distinct for distinct ids.
  static std::string safe_name(std::string_view message_id);

 private:
  std::filesystem::path dir_;
  FsBlobStore files_;
  mutable std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> file_of_;  // safe name -> file name
};

}  // namespace dither
