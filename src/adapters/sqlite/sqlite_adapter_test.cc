// The port contracts instantiated for SQLite (a file with the default reader pool, a file with a
// single reader so that reads queue for it, and a private in-memory database), plus what only the
// SQLite adapter promises: migrations, reopening, durability, error translation.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "adapters/sqlite/outbox_table.h"
#include "adapters/sqlite/sqlite_db.h"
#include "adapters/sqlite/sqlite_dither_repository.h"
#include "adapters/sqlite/sqlite_identity_store.h"
#include "adapters/sqlite/sqlite_image_repository.h"
#include "adapters/sqlite/sqlite_notification_repository.h"
#include "ports/testing/dither_repository_contract.h"
#include "ports/testing/identity_store_contract.h"
#include "ports/testing/image_repository_contract.h"
#include "ports/testing/notification_repository_contract.h"

namespace dither {
namespace {

namespace fs = std::filesystem;
using contract::DitherRepositoryContract;
using contract::DitherRepositoryFactory;
using contract::IdentityStoreContract;
using contract::IdentityStoreFactory;
using contract::ImageRepositoryContract;
using contract::ImageRepositoryFactory;
using contract::NotificationRepositoryContract;
using contract::NotificationRepositoryFactory;

// A directory of its own for this test process, removed at exit.
const fs::path& scratch_dir() {
  static const fs::path dir = [] {
    fs::path d =
        fs::path(::testing::TempDir()) / ("sqlite_adapter_test_" + std::to_string(getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

class ScratchCleanup : public ::testing::Environment {
 public:
  void TearDown() override { fs::remove_all(scratch_dir()); }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new ScratchCleanup);

std::string fresh_path(const std::string& stem) {
  static std::atomic<int> counter{0};
  return (scratch_dir() / (stem + "_" + std::to_string(++counter) + ".db")).string();
}

template <class T>
std::unique_ptr<T> must(Result<std::unique_ptr<T>> opened) {
  if (!opened.ok()) {
    ADD_FAILURE() << opened.error().message;
    return nullptr;
  }
  return std::move(*opened);
}

INSTANTIATE_TEST_SUITE_P(
    Sqlite, ImageRepositoryContract,
    ::testing::Values(
        ImageRepositoryFactory{
            "file", [] { return must(open_sqlite_image_repository(fresh_path("img"))); }},
        ImageRepositoryFactory{
            "file_one_reader",
            [] { return must(open_sqlite_image_repository(fresh_path("img"), {.readers = 1})); }},
        ImageRepositoryFactory{"memory",
                               [] { return must(open_sqlite_image_repository(":memory:")); }}),
    contract::FactoryName());

INSTANTIATE_TEST_SUITE_P(
    Sqlite, DitherRepositoryContract,
    ::testing::Values(
        DitherRepositoryFactory{
            "file", [] { return must(open_sqlite_dither_repository(fresh_path("dit"))); }},
        DitherRepositoryFactory{
            "file_one_reader",
            [] { return must(open_sqlite_dither_repository(fresh_path("dit"), {.readers = 1})); }},
        DitherRepositoryFactory{"memory",
                                [] { return must(open_sqlite_dither_repository(":memory:")); }}),
    contract::FactoryName());

INSTANTIATE_TEST_SUITE_P(
    Sqlite, NotificationRepositoryContract,
    ::testing::Values(
        NotificationRepositoryFactory{
            "file", [] { return must(open_sqlite_notification_repository(fresh_path("ntf"))); }},
        NotificationRepositoryFactory{"file_one_reader",
                                      [] {
                                        return must(open_sqlite_notification_repository(
                                            fresh_path("ntf"), {.readers = 1}));
                                      }},
        NotificationRepositoryFactory{
            "memory", [] { return must(open_sqlite_notification_repository(":memory:")); }}),
    contract::FactoryName());

INSTANTIATE_TEST_SUITE_P(
    Sqlite, IdentityStoreContract,
    ::testing::Values(
        IdentityStoreFactory{"file",
                             [] { return must(open_sqlite_identity_store(fresh_path("auth"))); }},
        IdentityStoreFactory{
            "file_one_reader",
            [] { return must(open_sqlite_identity_store(fresh_path("auth"), {.readers = 1})); }},
        IdentityStoreFactory{"memory",
                             [] { return must(open_sqlite_identity_store(":memory:")); }}),
    contract::FactoryName());

using contract::test_message;

ImageRecord sample_image() {
  ImageRecord r;
  r.uuid = new_image_id();
  r.filename = "x.jpg";
  r.url = "http://h/x.jpg";
  r.content_type = "image/jpeg";
  r.blob_key = ObjectKey{"originals/" + r.uuid.value + ".jpg"};
  return r;
}

Message uploaded(const ImageRecord& r) {
  return test_message("images", kImageUploaded, r.uuid.value);
}

// The schema_migrations rows of the file, as "version@applied_at".
std::vector<std::string> applied_migrations(const std::string& path) {
  auto c = sqlite::Connection::open(path, sqlite::Connection::Mode::kReadOnly, 1000);
  auto st = c->prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version");
  std::vector<std::string> rows;
  while (st.step()) {
    rows.push_back(std::to_string(st.column_int64(0)) + "@" + std::to_string(st.column_int64(1)));
  }
  return rows;
}

TEST(SqliteMigrations, ApplyOnceAndSurviveReopening) {
  const std::string path = fresh_path("mig");
  must(open_sqlite_image_repository(path)).reset();
  const std::vector<std::string> first = applied_migrations(path);
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(first[0].substr(0, 2), "1@");
  EXPECT_EQ(first[1].substr(0, 2), "2@");
  EXPECT_EQ(first[2].substr(0, 2), "3@");
  EXPECT_EQ(first[3].substr(0, 2), "4@");

  must(open_sqlite_image_repository(path)).reset();
  EXPECT_EQ(applied_migrations(path), first);  // not re-applied: same rows, same times
}

TEST(SqliteMigrations, ANewerSchemaVersionIsRefused) {
  const std::string path = fresh_path("future");
  must(open_sqlite_dither_repository(path)).reset();
  {
    auto c = sqlite::Connection::open(path, sqlite::Connection::Mode::kReadWrite, 1000);
    c->exec("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)");
  }
  auto reopened = open_sqlite_dither_repository(path);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.error().kind, ErrorKind::kUnsupported);
  EXPECT_NE(reopened.error().message.find("newer"), std::string::npos) << reopened.error().message;
}

TEST(SqliteMigrations, AnotherServicesFileIsRefused) {
  const std::string path = fresh_path("upload");
  must(open_sqlite_image_repository(path)).reset();
  auto wrong = open_sqlite_dither_repository(path);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().kind, ErrorKind::kUnsupported);

  const std::string foreign = fresh_path("foreign");
  {
    auto c = sqlite::Connection::open(foreign, sqlite::Connection::Mode::kReadWrite, 1000);
    c->exec("CREATE TABLE something (x INTEGER)");
  }
  EXPECT_FALSE(open_sqlite_image_repository(foreign).ok());
}

TEST(SqliteMigrations, AMigrationThatFailsLeavesNoTrace) {
  static constexpr std::array<sqlite::Migration, 2> kBroken = {{
      {1, "CREATE TABLE a (x INTEGER);"},
      {2, "CREATE TABLE b (y INTEGER); THIS IS NOT SQL;"},
  }};
  const std::string path = fresh_path("broken");
  auto db = sqlite::Database::open(path, {"a test schema", 0x54455354, kBroken}, {});
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.error().message.find("migration 2"), std::string::npos) << db.error().message;
  EXPECT_EQ(applied_migrations(path).size(), 1u);  // migration 1 stays applied
  auto c = sqlite::Connection::open(path, sqlite::Connection::Mode::kReadOnly, 1000);
  auto st = c->prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'b'");
  ASSERT_TRUE(st.step());
  EXPECT_EQ(st.column_int64(0), 0);
}

TEST(SqliteRepositories, DataSurvivesReopening) {
  const std::string image_path = fresh_path("upload");
  const std::string dither_path = fresh_path("dither");
  const ImageRecord image = sample_image();
  DitherRecord dither;
  {
    auto images = must(open_sqlite_image_repository(image_path));
    ASSERT_TRUE(images->insert_image(image, uploaded(image)).ok());
    DitherSummary summary;
    summary.dither_id = 1;
    summary.status = std::string(kStatusFinished);
    summary.url_dither = "http://h/d.png";
    ASSERT_TRUE(images->mark_finished(image.uuid, summary, "m-1").ok());

    auto dithers = must(open_sqlite_dither_repository(dither_path));
    OriginalRecord original{image.uuid, image.url, image.filename, image.blob_key, ""};
    DitherRecord wanted;
    wanted.uuid = image.uuid;
    auto created = dithers->record_original(original, wanted, "m-0");
    ASSERT_TRUE(created.ok() && created->has_value());
    dither = **created;
  }
  auto images = must(open_sqlite_image_repository(image_path));
  auto got = images->get_image(image.uuid);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, kStatusFinished);
  ASSERT_EQ(got->dithers.size(), 1u);
  EXPECT_EQ(got->dithers[0].url_dither, "http://h/d.png");
  EXPECT_EQ(contract::all_pending(*images).size(), 1u);
  EXPECT_FALSE(*images->mark_finished(image.uuid, {}, "m-1"));  // processed ids persist too

  auto dithers = must(open_sqlite_dither_repository(dither_path));
  auto again = dithers->get_dither(dither.id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->request_id, "m-0");
  EXPECT_TRUE(dithers->get_original(image.uuid).ok());
}

// The embedded store frees every claim at start-up (a crashed process's), but the attempts those
// claims counted stay: a dither that crash-loops the process reaches the cap (DitherWorkers).
TEST(SqliteRepositories, ClaimsAreFreedAtOpenButTheirAttemptsCount) {
  const std::string path = fresh_path("dither_attempts");
  DitherRecord wanted;
  wanted.uuid = new_image_id();
  wanted.request_id = "r-1";
  DitherId id;
  {
    auto dithers = must(open_sqlite_dither_repository(path));
    id = dithers->create_dither(wanted)->id;
  }
  for (int life = 1; life <= 3; ++life) {
    auto dithers = must(open_sqlite_dither_repository(path));
    auto claimed = dithers->claim_dithers(1, "life-" + std::to_string(life), std::chrono::hours{1});
    ASSERT_TRUE(claimed.ok());
    ASSERT_EQ(claimed->size(), 1u) << "life " << life << ": the last life's claim was freed";
    EXPECT_EQ((*claimed)[0].id, id);
    EXPECT_EQ((*claimed)[0].attempts, life);
    // ... and the process "crashes" here, holding the claim.
  }
}

TEST(SqliteRepositories, ParkedOutboxEntriesSurviveReopening) {
  const std::string path = fresh_path("upload_parked");
  const ImageRecord image = sample_image();
  {
    auto images = must(open_sqlite_image_repository(path));
    ASSERT_TRUE(images->insert_image(image, uploaded(image)).ok());
    const auto pending = contract::all_pending(*images);
    ASSERT_EQ(pending.size(), 1u);
    ASSERT_TRUE(images->record_publish_failure(pending[0].seq, "too large", true).ok());
  }
  auto images = must(open_sqlite_image_repository(path));
  EXPECT_TRUE(contract::all_pending(*images).empty());
  auto parked = images->parked_messages(10);
  ASSERT_TRUE(parked.ok());
  ASSERT_EQ(parked->size(), 1u);
  EXPECT_EQ((*parked)[0].last_error, "too large");
  EXPECT_EQ((*parked)[0].attempts, 1);
}

TEST(SqliteRepositories, TwoServicesTwoFilesSideBySide) {
  const fs::path data = scratch_dir() / "not_yet_there" / "data";  // parents are created
  auto images = must(open_sqlite_image_repository((data / "upload.db").string()));
  auto dithers = must(open_sqlite_dither_repository((data / "dither.db").string()));
  ASSERT_TRUE(images && dithers);
  const ImageRecord image = sample_image();
  ASSERT_TRUE(images->insert_image(image, uploaded(image)).ok());
  DitherRecord wanted;
  wanted.uuid = image.uuid;
  wanted.request_id = "r-1";
  ASSERT_TRUE(dithers->create_dither(wanted).ok());
  EXPECT_EQ(contract::all_pending(*images).size(), 1u);
  EXPECT_TRUE(contract::all_pending(*dithers).empty());
  EXPECT_TRUE(fs::exists(data / "upload.db"));
  EXPECT_TRUE(fs::exists(data / "dither.db"));
}

TEST(SqliteRepositories, CommittedWritesSurviveKill9) {
  const std::string path = fresh_path("kill");
  constexpr int kImages = 40;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto images = open_sqlite_image_repository(path);
    if (!images.ok()) _exit(2);
    for (int i = 0; i < kImages; ++i) {
      ImageRecord r = sample_image();
      if (!(*images)->insert_image(r, uploaded(r)).ok()) _exit(3);
    }
    kill(getpid(), SIGKILL);  // no destructors, no checkpoint, no clean close
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;

  auto images = must(open_sqlite_image_repository(path));
  auto page = images->list_images({1000, std::nullopt, ""});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), static_cast<size_t>(kImages));
  EXPECT_EQ(contract::all_pending(*images).size(), static_cast<size_t>(kImages));
}

TEST(SqliteRepositories, AWriteLockHeldElsewhereIsUnavailableWhileReadsGoOn) {
  const std::string path = fresh_path("busy");
  auto images = must(open_sqlite_image_repository(path, {.readers = 2, .busy_timeout_ms = 50}));
  const ImageRecord first = sample_image();
  ASSERT_TRUE(images->insert_image(first, uploaded(first)).ok());

  auto other = sqlite::Connection::open(path, sqlite::Connection::Mode::kReadWrite, 0);
  other->exec("BEGIN IMMEDIATE");
  const ImageRecord second = sample_image();
  auto blocked = images->insert_image(second, uploaded(second));
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.error().kind, ErrorKind::kUnavailable) << blocked.error().message;
  EXPECT_TRUE(images->get_image(first.uuid).ok());  // WAL: readers are not blocked
  EXPECT_TRUE(images->ping().ok());
  other->exec("ROLLBACK");

  EXPECT_TRUE(images->insert_image(second, uploaded(second)).ok());
  EXPECT_EQ(contract::all_pending(*images).size(), 2u);
}

TEST(SqliteRepositories, MissingIdsAreInvalidArguments) {
  auto dithers = must(open_sqlite_dither_repository(":memory:"));
  DitherRecord wanted;
  wanted.uuid = new_image_id();
  auto created = dithers->create_dither(wanted);  // no request_id
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().kind, ErrorKind::kInvalidArgument);
  OriginalRecord original{wanted.uuid, "u", "f", ObjectKey{"originals/x.png"}, ""};
  auto recorded = dithers->record_original(original, wanted, "");  // no message id
  ASSERT_FALSE(recorded.ok());
  EXPECT_EQ(recorded.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_FALSE(dithers->get_original(wanted.uuid).ok());

  auto images = must(open_sqlite_image_repository(":memory:"));
  const ImageRecord image = sample_image();
  ASSERT_TRUE(images->insert_image(image, uploaded(image)).ok());
  auto duplicate = images->insert_image(image, uploaded(image));
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(duplicate.error().message.find("INSERT"), std::string::npos)
      << "no SQL in messages: " << duplicate.error().message;
}

TEST(SqliteRepositories, HeadersRoundTripAnyBytes) {
  const Headers headers = {{"b", std::string("\xff\xfe nul:\0:end", 12)},
                           {"a", "[\"json\", {}]"},
                           {"b", ""},
                           {"", "empty name"}};
  EXPECT_EQ(sqlite::decode_headers(sqlite::encode_headers(headers)), headers);
  EXPECT_EQ(sqlite::decode_headers(sqlite::encode_headers({})), Headers{});
  EXPECT_THROW(sqlite::decode_headers("{\"not\": \"pairs\"}"), sqlite::SqliteError);
}

Notification sample_notification(int64_t dither_id) {
  Notification n;
  n.uuid = new_image_id();
  n.dither_id = dither_id;
  n.kind = std::string(kDitherUploaded);
  n.mail.from = "noreply@dither.example";
  n.mail.to = "owner@example.com";
  n.mail.subject = "ready";
  n.mail.text = "text";
  n.mail.html = "<p>html</p>";
  n.mail.message_id = "<" + std::to_string(dither_id) + "@dither.example>";
  return n;
}

TEST(SqliteNotifications, DataSurvivesReopeningAndClaimsAreFreedAtOpen) {
  const std::string path = fresh_path("notify");
  int64_t held = 0;
  int64_t sent = 0;
  {
    auto repo = must(open_sqlite_notification_repository(path));
    ASSERT_TRUE(repo);
    ASSERT_TRUE(*repo->record(sample_notification(1), "m-1"));
    ASSERT_TRUE(*repo->record(sample_notification(2), "m-2"));
    auto claimed = repo->claim_due(2, "before-crash", std::chrono::seconds{600});
    ASSERT_TRUE(claimed.ok());
    ASSERT_EQ(claimed->size(), 2u);
    sent = (*claimed)[0].id;
    held = (*claimed)[1].id;
    ASSERT_TRUE(*repo->mark_sent(sent));
  }
  auto repo = must(open_sqlite_notification_repository(path));
  ASSERT_TRUE(repo);
  // The previous life's claim is gone: the mail it held is due again at once.
  auto claimed = repo->claim_due(10, "after-restart", std::chrono::seconds{600});
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].id, held);
  auto got = repo->get(sent);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, kNotificationSent);
  EXPECT_EQ(got->attempts, 1);
  EXPECT_FALSE(*repo->record(sample_notification(3), "m-1"));  // processed ids persist
  EXPECT_FALSE(*repo->record(sample_notification(2), "m-9"));  // so does (dither_id, kind)
}

TEST(SqliteNotifications, TheStoreHasAFileOfItsOwn) {
  const std::string path = fresh_path("notify");
  must(open_sqlite_notification_repository(path)).reset();
  const std::vector<std::string> applied = applied_migrations(path);
  ASSERT_EQ(applied.size(), 3u);
  EXPECT_EQ(applied[0].substr(0, 2), "1@");
  EXPECT_EQ(applied[1].substr(0, 2), "2@");
  EXPECT_EQ(applied[2].substr(0, 2), "3@");
  {
    auto c = sqlite::Connection::open(path, sqlite::Connection::Mode::kReadOnly, 1000);
    auto st = c->prepare("PRAGMA application_id");
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.column_int64(0), 0x44494E54);  // DINT
  }
  auto as_dithers = open_sqlite_dither_repository(path);
  ASSERT_FALSE(as_dithers.ok());
  EXPECT_EQ(as_dithers.error().kind, ErrorKind::kUnsupported);
  auto as_images = open_sqlite_image_repository(path);
  ASSERT_FALSE(as_images.ok());
  EXPECT_EQ(as_images.error().kind, ErrorKind::kUnsupported);

  const std::string dither_path = fresh_path("dither");
  must(open_sqlite_dither_repository(dither_path)).reset();
  auto wrong = open_sqlite_notification_repository(dither_path);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().kind, ErrorKind::kUnsupported);
}

TEST(SqliteNotifications, AWriteLockHeldElsewhereIsUnavailable) {
  const std::string path = fresh_path("notify");
  auto repo =
      must(open_sqlite_notification_repository(path, {.readers = 2, .busy_timeout_ms = 50}));
  ASSERT_TRUE(repo);
  ASSERT_TRUE(*repo->record(sample_notification(1), "m-1"));
  auto other = sqlite::Connection::open(path, sqlite::Connection::Mode::kReadWrite, 0);
  other->exec("BEGIN IMMEDIATE");
  auto blocked = repo->record(sample_notification(2), "m-2");
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.error().kind, ErrorKind::kUnavailable) << blocked.error().message;
  EXPECT_TRUE(repo->list({10, std::nullopt, ""}).ok());  // WAL: readers are not blocked
  other->exec("ROLLBACK");
  EXPECT_TRUE(*repo->record(sample_notification(2), "m-2"));  // the failed call recorded nothing
}

// Takes the file back to the schema version before owners: drops what the newest migration
// (`version`) added and forgets that it was applied, as if an older build had created the file.
void downgrade(const std::string& path, int version, const std::string& undo) {
  auto c = sqlite::Connection::open(path, sqlite::Connection::Mode::kReadWrite, 1000);
  c->exec("BEGIN; " + undo + " DELETE FROM schema_migrations WHERE version = " +
          std::to_string(version) + "; COMMIT;");
}

TEST(SqliteOwners, ImagesOfTheVersionBeforeOwnersBelongToTheSystemOwner) {
  const std::string path = fresh_path("old_upload");
  ImageRecord image = sample_image();
  image.owner = "alice";  // lost with the column: the older schema had none
  {
    auto images = must(open_sqlite_image_repository(path));
    ASSERT_TRUE(images && images->insert_image(image, uploaded(image)).ok());
  }
  downgrade(path, 3, "DROP INDEX images_by_owner; ALTER TABLE images DROP COLUMN owner;");

  auto images = must(open_sqlite_image_repository(path));
  ASSERT_TRUE(images);
  EXPECT_EQ(applied_migrations(path).size(), 4u);
  auto got = images->get_image(image.uuid);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->owner, "system");
  EXPECT_EQ(got->filename, image.filename);
  auto mine = images->list_images({.limit = 10, .before = std::nullopt, .owner = "system"});
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->items.size(), 1u);
  EXPECT_EQ(mine->items[0].uuid, image.uuid);
  EXPECT_TRUE(
      images->list_images({.limit = 10, .before = std::nullopt, .owner = "alice"})->items.empty());
}

TEST(SqliteOwners, DithersOfTheVersionBeforeOwnersBelongToTheSystemOwner) {
  const std::string path = fresh_path("old_dither");
  const ImageId uuid = new_image_id();
  {
    auto dithers = must(open_sqlite_dither_repository(path));
    OriginalRecord original;
    original.uuid = uuid;
    original.url = "http://h/x.png";
    original.owner = "alice";
    DitherRecord wanted;
    wanted.uuid = uuid;
    wanted.owner = wanted.requested_by = "alice";
    ASSERT_TRUE(dithers->record_original(original, wanted, "m-1").ok());
  }
  downgrade(path, 5,
            "DROP INDEX dithers_by_owner; ALTER TABLE dithers DROP COLUMN owner; "
            "ALTER TABLE dithers DROP COLUMN requested_by; "
            "ALTER TABLE originals DROP COLUMN owner;");

  auto dithers = must(open_sqlite_dither_repository(path));
  ASSERT_TRUE(dithers);
  EXPECT_EQ(applied_migrations(path).size(), 9u);
  auto original = dithers->get_original(uuid);
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(original->owner, "system");
  auto of = dithers->dithers_of(uuid);
  ASSERT_TRUE(of.ok());
  ASSERT_EQ(of->size(), 1u);
  EXPECT_EQ((*of)[0].owner, "system");
  EXPECT_EQ((*of)[0].requested_by, "system");
  EXPECT_EQ(
      dithers->list_dithers({.limit = 10, .before = std::nullopt, .owner = "system"})->items.size(),
      1u);
}

// A file of the version before canonical options and presets (7), holding dithers whose options
// that version stored as requested: opened by this build, they are the legacy rows the service
// rewrites, oldest first, and each leaves the list once rewritten; new dithers never enter it.
TEST(SqliteCanonicalOptions, DithersOfTheVersionBeforeAreLegacyUntilRewritten) {
  const std::string path = fresh_path("old_options");
  const ImageId uuid = new_image_id();
  std::vector<DitherRecord> old;
  {
    auto dithers = must(open_sqlite_dither_repository(path));
    ASSERT_TRUE(dithers);
    OriginalRecord original;
    original.uuid = uuid;
    original.url = "http://h/x.png";
    DitherRecord wanted;
    wanted.uuid = uuid;
    wanted.options_json = R"({"algorithm":"Atkinson","channels":"4"})";
    auto automatic = dithers->record_original(original, wanted, "m-1");
    ASSERT_TRUE(automatic.ok() && automatic->has_value());
    old.push_back(**automatic);
    for (int i = 0; i < 2; ++i) {
      wanted.request_id = "r-" + std::to_string(i);
      wanted.options_json = R"({"palette":"PICO8","n":")" + std::to_string(i) + R"("})";
      auto created = dithers->create_dither(wanted);
      ASSERT_TRUE(created.ok());
      old.push_back(*created);
    }
    ASSERT_TRUE(dithers->put_preset(contract::preset("alice", "gone")).ok());
  }
  downgrade(path, 9, "DROP TABLE presets;");
  downgrade(path, 8,
            "DROP INDEX dithers_legacy_options; ALTER TABLE dithers DROP COLUMN options_form;");
  EXPECT_EQ(applied_migrations(path).size(), 7u);

  auto dithers = must(open_sqlite_dither_repository(path));
  ASSERT_TRUE(dithers);
  EXPECT_EQ(applied_migrations(path).size(), 9u);
  auto all = dithers->legacy_options(10);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 3u);
  for (size_t i = 0; i < old.size(); ++i) {
    SCOPED_TRACE("dither " + std::to_string(i));
    contract::expect_same_dither((*all)[i], old[i]);  // oldest first, as stored
  }
  auto first_two = dithers->legacy_options(2);
  ASSERT_TRUE(first_two.ok());
  ASSERT_EQ(first_two->size(), 2u);
  EXPECT_EQ((*first_two)[1].id, old[1].id);
  EXPECT_TRUE(dithers->presets_of("")->empty());  // the table is new (and empty)

  // New dithers are canonical; the old ones leave the list as they are rewritten.
  DitherRecord wanted;
  wanted.uuid = uuid;
  wanted.request_id = "r-new";
  const DitherRecord fresh = *dithers->create_dither(wanted);
  auto rewritten = dithers->set_canonical_options(old[1].id, R"({"algorithm":"sierra"})");
  ASSERT_TRUE(rewritten.ok() && *rewritten);
  EXPECT_EQ(dithers->get_dither(old[1].id)->options_json, R"({"algorithm":"sierra"})");
  EXPECT_EQ(dithers->get_dither(old[1].id)->updated_at, old[1].updated_at);
  std::vector<DitherRecord> left = *dithers->legacy_options(10);
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].id, old[0].id);
  EXPECT_EQ(left[1].id, old[2].id);
  ASSERT_TRUE(*dithers->set_canonical_options(old[0].id, "{}"));
  ASSERT_TRUE(*dithers->set_canonical_options(old[2].id, "{}"));
  EXPECT_TRUE(dithers->legacy_options(10)->empty());
  EXPECT_EQ(dithers->get_dither(fresh.id)->options_json, "");

  // Rewritten is for good: reopening finds nothing left.
  dithers.reset();
  dithers = must(open_sqlite_dither_repository(path));
  ASSERT_TRUE(dithers);
  EXPECT_TRUE(dithers->legacy_options(10)->empty());
  EXPECT_TRUE(dithers->put_preset(contract::preset("alice", "crisp")).ok());
}

TEST(SqliteOwners, NotificationsOfTheVersionBeforeOwnersBelongToTheSystemOwner) {
  const std::string path = fresh_path("old_notify");
  Notification n = sample_notification(1);
  n.owner = "alice";
  n.to_hash = std::string(64, 'a');
  {
    auto repo = must(open_sqlite_notification_repository(path));
    ASSERT_TRUE(repo);
    auto recorded = repo->record(n, "m-1");
    ASSERT_TRUE(recorded.ok() && *recorded);
  }
  downgrade(path, 2,
            "DROP INDEX notifications_by_owner; DROP INDEX notifications_by_address; "
            "ALTER TABLE notifications DROP COLUMN owner; "
            "ALTER TABLE notifications DROP COLUMN to_hash;");

  auto repo = must(open_sqlite_notification_repository(path));
  ASSERT_TRUE(repo);
  EXPECT_EQ(applied_migrations(path).size(), 3u);
  auto all = repo->list({.limit = 10, .before = std::nullopt, .owner = "system"});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->items.size(), 1u);
  EXPECT_EQ(all->items[0].owner, "system");
  EXPECT_EQ(all->items[0].to_hash, "");
  EXPECT_EQ(all->items[0].mail.to, n.mail.to);
  EXPECT_EQ(all->items[0].status, kNotificationPending);
}

TEST(SqliteIdentity, TheStoreHasAFileOfItsOwnAndKeepsItsData) {
  const std::string path = fresh_path("data/auth");  // parents are created
  {
    auto store = must(open_sqlite_identity_store(path));
    ASSERT_TRUE(store);
    ApiKeyRecord key;
    key.id = "k0123456789a";
    key.owner = "alice";
    key.name = "ci";
    key.admin = true;
    key.hash = std::string(64, 'e');
    key.created_at = 5;
    ASSERT_TRUE(store->insert_key(key).ok());
  }
  auto store = must(open_sqlite_identity_store(path));
  ASSERT_TRUE(store);
  auto key = store->get_key("k0123456789a");
  ASSERT_TRUE(key.ok());
  EXPECT_TRUE(key->admin);
  EXPECT_EQ(key->owner, "alice");
  EXPECT_EQ(applied_migrations(path).size(), 1u);
  {
    auto c = sqlite::Connection::open(path, sqlite::Connection::Mode::kReadOnly, 1000);
    auto st = c->prepare("PRAGMA application_id");
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.column_int64(0), 0x44494155);  // DIAU
  }
  auto as_images = open_sqlite_image_repository(path);
  ASSERT_FALSE(as_images.ok());
  EXPECT_EQ(as_images.error().kind, ErrorKind::kUnsupported);
  const std::string notify_path = fresh_path("notify");
  must(open_sqlite_notification_repository(notify_path)).reset();
  auto wrong = open_sqlite_identity_store(notify_path);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().kind, ErrorKind::kUnsupported);
}

}  // namespace
}  // namespace dither
