// The port contracts instantiated for SQLite (a file with the default reader pool, a file with a
// single reader so that reads queue for it, and a private in-memory database), plus what only the
// SQLite adapter promises: migrations, reopening, durability, error translation.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/sqlite/outbox_table.h"
#include "adapters/sqlite/shared_counter.h"
#include "adapters/sqlite/sqlite_db.h"
#include "adapters/sqlite/sqlite_dither_repository.h"
#include "adapters/sqlite/sqlite_identity_store.h"
#include "adapters/sqlite/sqlite_image_repository.h"
#include "adapters/sqlite/sqlite_notification_repository.h"
#include "adapters/testing/sql_store_checks.h"

namespace dither {
namespace {

namespace fs = std::filesystem;
using sql_testing::must;
using sql_testing::sample_image;
using sql_testing::sample_notification;
using sql_testing::uploaded;

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

// An API key of alice's named "ci", as the gateway would store it.
ApiKeyRecord sample_key(std::string id) {
  ApiKeyRecord key;
  key.id = std::move(id);
  key.owner = "alice";
  key.name = "ci";
  key.hash = std::string(64, 'e');
  key.created_at = 5;
  return key;
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

// Takes the file back to the schema version before `version` (sql_testing::Backend::downgrade).
void downgrade(const std::string& path, int version, const std::string& undo) {
  auto c = sqlite::Connection::open(path, sqlite::Connection::Mode::kReadWrite, 1000);
  c->exec("BEGIN; " + undo + " DELETE FROM schema_migrations WHERE version = " +
          std::to_string(version) + "; COMMIT;");
}

// Opens a store with `open` in a variant of the contract runs: a file with the default reader
// pool, a file with a single reader, or a private in-memory database.
template <class Port>
sql_testing::Opener<Port> opener(Result<std::unique_ptr<Port>> (*open)(const std::string&,
                                                                       const SqliteOptions&)) {
  return [open](const std::string& path, const std::string& variant) {
    if (variant == "memory") return must(open(":memory:", {}));
    return must(
        open(path, {.readers = variant == "file_one_reader" ? 1 : SqliteOptions{}.readers}));
  };
}

const sql_testing::Backend& backend() {
  static const sql_testing::Backend b{
      .variants = {"file", "file_one_reader", "memory"},
      .fresh_place = fresh_path,
      .images = opener(&open_sqlite_image_repository),
      .dithers = opener(&open_sqlite_dither_repository),
      .notifications = opener(&open_sqlite_notification_repository),
      .identities = opener(&open_sqlite_identity_store),
      .applied_migrations = applied_migrations,
      .downgrade = downgrade,
      .migrations = {.image_owners = 3,
                     .images = 5,
                     .dither_owners = 5,
                     .dither_canonical = 8,
                     .dithers = 10,
                     .image_frames = 5,
                     .original_frames = 10},
  };
  return b;
}

DITHER_INSTANTIATE_SQL_STORE_CONTRACTS(Sqlite, backend());
const bool kUpgradeTests = sql_testing::register_upgrade_tests("Sqlite", backend);

TEST(SqliteMigrations, ApplyOnceAndSurviveReopening) {
  sql_testing::check_migrations_apply_once(backend());
}

TEST(SqliteMigrations, ANewerSchemaVersionIsRefused) {
  const std::string path = fresh_path("future");
  must(open_sqlite_dither_repository(path)).reset();
  {
    auto c = sqlite::Connection::open(path, sqlite::Connection::Mode::kReadWrite, 1000);
    c->exec("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)");
  }
  sql_testing::expect_refused(open_sqlite_dither_repository(path), ErrorKind::kUnsupported,
                              "newer");
}

TEST(SqliteMigrations, AnotherServicesFileIsRefused) {
  const std::string path = fresh_path("upload");
  must(open_sqlite_image_repository(path)).reset();
  sql_testing::expect_refused(open_sqlite_dither_repository(path), ErrorKind::kUnsupported);

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
  sql_testing::check_data_survives_reopening(backend(), sql_testing::Claims::kFreedAtOpening);
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
  sql_testing::check_stores_side_by_side(*images, *dithers);
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
  auto images = must(open_sqlite_image_repository(":memory:"));
  sql_testing::check_missing_ids_are_invalid_arguments(*dithers, *images);
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
  sql_testing::expect_refused(open_sqlite_dither_repository(path), ErrorKind::kUnsupported);
  sql_testing::expect_refused(open_sqlite_image_repository(path), ErrorKind::kUnsupported);

  const std::string dither_path = fresh_path("dither");
  must(open_sqlite_dither_repository(dither_path)).reset();
  sql_testing::expect_refused(open_sqlite_notification_repository(dither_path),
                              ErrorKind::kUnsupported);
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

TEST(SqliteIdentity, TheStoreHasAFileOfItsOwnAndKeepsItsData) {
  const std::string path = fresh_path("data/auth");  // parents are created
  {
    auto store = must(open_sqlite_identity_store(path));
    ASSERT_TRUE(store);
    ApiKeyRecord key = sample_key("k0123456789a");
    key.admin = true;
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
  sql_testing::expect_refused(open_sqlite_image_repository(path), ErrorKind::kUnsupported);
  const std::string notify_path = fresh_path("notify");
  must(open_sqlite_notification_repository(notify_path)).reset();
  sql_testing::expect_refused(open_sqlite_identity_store(notify_path), ErrorKind::kUnsupported);
}

// dither-keys revokes in a process of its own while ditherd runs: the server's store sees the
// keys' stamp move (the counter file beside auth.db, mapped by both), and it outlives both. The
// child is forked before this process opens the database (SQLite's state must not cross a fork)
// and waits on a pipe until the key is there.
TEST(SqliteIdentity, ARevocationInAnotherProcessMovesTheStampHere) {
  using Credential = IdentityStore::Credential;
  const std::string path = fresh_path("auth-stamp");
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(go[1]);
    char byte = 0;
    if (read(go[0], &byte, 1) != 1) _exit(2);
    auto other = open_sqlite_identity_store(path);
    if (!other.ok()) _exit(3);
    auto revoked = (*other)->revoke_key("k0123456789b", 7);
    _exit(revoked.ok() && *revoked ? 0 : 4);
  }
  close(go[0]);
  // Whatever fails below, the child is not left waiting: the pipe closes (it reads nothing and
  // exits), and the child is waited for.
  struct Child {
    pid_t pid;
    int go;
    ~Child() {
      if (go >= 0) close(go);
      if (pid > 0) waitpid(pid, nullptr, 0);
    }
  } guard{child, go[1]};
  auto store = must(open_sqlite_identity_store(path));
  const ApiKeyRecord key = sample_key("k0123456789b");
  ASSERT_TRUE(store->insert_key(key).ok());
  const std::optional<uint64_t> before = store->revocation_stamp(Credential::kKey);
  const std::optional<uint64_t> sessions = store->revocation_stamp(Credential::kSession);
  ASSERT_TRUE(before.has_value());
  ASSERT_EQ(write(guard.go, "g", 1), 1);
  close(guard.go);
  guard.go = -1;
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  guard.pid = -1;
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  const std::optional<uint64_t> after = store->revocation_stamp(Credential::kKey);
  ASSERT_TRUE(after.has_value());
  EXPECT_NE(*after, *before);
  EXPECT_EQ(store->revocation_stamp(Credential::kSession), sessions);
  EXPECT_EQ(store->get_key(key.id)->revoked_at, 7);

  store.reset();
  auto reopened = must(open_sqlite_identity_store(path));
  EXPECT_EQ(reopened->revocation_stamp(Credential::kKey), after) << "the counter lives in its file";
  const fs::path counter = path + "-revocations";
  ASSERT_TRUE(fs::is_regular_file(counter));
  EXPECT_EQ(fs::status(counter).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST(SqliteIdentity, ACounterFileThroughALinkOrWritableByOthersIsRefused) {
  const std::string path = fresh_path("auth-link");
  const std::string elsewhere = fresh_path("elsewhere");
  fs::create_symlink(elsewhere, path + "-revocations");
  auto store = open_sqlite_identity_store(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(store.error().message.find("-revocations"), std::string::npos) << store.error().message;
  EXPECT_FALSE(fs::exists(elsewhere));

  const std::string loose = fresh_path("auth-loose");
  must(open_sqlite_identity_store(loose)).reset();
  fs::permissions(loose + "-revocations", fs::perms::group_write, fs::perm_options::add);
  auto refused = open_sqlite_identity_store(loose);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("chmod 600"), std::string::npos)
      << refused.error().message;
}

// sqlite_db.cc turns SQLite's memory statistics off before the library starts: with them on,
// every allocation takes a mutex of the whole process. Off, the library counts nothing.
TEST(SqliteLibrary, MemoryStatisticsAreOff) {
  auto store = must(open_sqlite_identity_store(fresh_path("memstatus")));
  ASSERT_TRUE(store->list_keys().ok());
  EXPECT_EQ(sqlite3_memory_used(), 0);
}

// The stamp moves after the revocation's write, never before: while the write waits for the
// write lock (held by another connection here), a reader that reads the stamp and then the key
// sees the key valid under the old stamp, which the revocation will move.
TEST(SqliteIdentity, TheStampMovesOnlyOnceTheRevocationIsWritten) {
  using Credential = IdentityStore::Credential;
  const std::string path = fresh_path("auth-order");
  auto store = must(open_sqlite_identity_store(path, {.readers = 2, .busy_timeout_ms = 10'000}));
  const ApiKeyRecord key = sample_key("k0123456789c");
  ASSERT_TRUE(store->insert_key(key).ok());
  const std::optional<uint64_t> before = store->revocation_stamp(Credential::kKey);
  auto other = sqlite::Connection::open(path, sqlite::Connection::Mode::kReadWrite, 0);
  other->exec("BEGIN IMMEDIATE");
  std::atomic<bool> done{false};
  std::thread revoker([&] {
    EXPECT_TRUE(store->revoke_key(key.id, 7).ok());
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the revoker waits for the lock
  EXPECT_FALSE(done.load());
  EXPECT_EQ(store->revocation_stamp(Credential::kKey), before) << "moved before the write";
  EXPECT_EQ(store->get_key(key.id)->revoked_at, 0);
  other->exec("COMMIT");
  revoker.join();
  EXPECT_NE(store->revocation_stamp(Credential::kKey), before);
  EXPECT_EQ(store->get_key(key.id)->revoked_at, 7);
}

TEST(SqliteCounters, ConcurrentBumpsAreAllCounted) {
  const std::string path = fresh_path("counters-threads");
  auto a = must(sqlite::SharedCounters::open(path));
  auto b = must(sqlite::SharedCounters::open(path));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) (t % 2 == 0 ? *a : *b).bump(1);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(a->load(1), 4000u);
  EXPECT_EQ(b->load(1), 4000u);
  EXPECT_EQ(a->load(0), 0u);
}

}  // namespace
}  // namespace dither
