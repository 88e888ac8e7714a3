// The port contracts instantiated for PostgreSQL (each test in a fresh schema of its own, so the
// tests can run in parallel and again), plus what only the PostgreSQL adapter promises:
// migrations, schemas side by side, the pool's bound, kUnavailable while the server is down and
// recovery once it is back.
//
// Needs the server of scripts/infra/postgres.sh on 127.0.0.1:DITHER_TEST_POSTGRES_PORT (ctest
// starts it through the infra_postgres fixture). The restart test starts and stops a private
// server of its own with the same script, so that it never disturbs tests running in parallel.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "adapters/postgres/pg_db.h"
#include "adapters/postgres/pg_outbox.h"
#include "adapters/postgres/postgres.h"
#include "adapters/testing/sql_store_checks.h"

// LeakSanitizer (Sanitize build): libpqxx 6.4 leaks the PGresult of a statement that fails
// because the connection broke (connection_base::make_result asks the dead connection for its
// encoding, which throws, before the result is owned; fixed in libpqxx 7). Suppressed here, where
// the restart test breaks connections on purpose: leaks of memory that libpq allocated. Anything
// of ours that leaked would still be reported (its own allocation has no libpq frame).
extern "C" const char* __lsan_default_suppressions();   // NOLINT(bugprone-reserved-identifier)
extern "C" const char* __lsan_default_suppressions() {  // NOLINT(bugprone-reserved-identifier)
  return "leak:libpq.so\n";
}

namespace dither {
namespace {

using sql_testing::sample_image;
using sql_testing::sample_notification;
using sql_testing::uploaded;
using Clock = std::chrono::steady_clock;

constexpr int kPort = DITHER_TEST_POSTGRES_PORT;

std::string conninfo(int port = kPort, const std::string& application = "") {
  std::string c = postgres_conninfo("127.0.0.1", port, "dither", "dither", "dither");
  if (!application.empty()) postgres::append_option(c, "application_name", application);
  return c;
}

std::string start_hint(int port, const std::string& run_dir) {
  return "start it with: DITHER_INFRA_RUN=" + run_dir + " POSTGRES_PORT=" + std::to_string(port) +
         " " DITHER_SOURCE_DIR
         "/scripts/infra/postgres.sh start (ctest does this through the "
         "infra_postgres fixture)";
}

// Schemas made by this process, dropped at exit.
std::mutex schemas_mutex;
std::vector<std::string> made_schemas;

// A schema name no other test (in this process, a parallel one or an earlier run) uses.
std::string fresh_schema(const std::string& stem = "t") {
  static std::atomic<int> counter{0};
  static const std::string salt = [] {
    std::random_device random;
    return std::to_string(random() % 1000000);
  }();
  std::string name =
      stem + "_" + std::to_string(getpid()) + "_" + salt + "_" + std::to_string(++counter);
  std::lock_guard lock(schemas_mutex);
  made_schemas.push_back(name);
  return name;
}

// Runs `sql` on a connection of its own (for checks behind the adapter's back).
pqxx::result query(const std::string& sql, int port = kPort) {
  pqxx::connection c(conninfo(port));
  pqxx::quiet_errorhandler quiet(c);
  pqxx::work tx(c);
  pqxx::result r = tx.exec(sql);
  tx.commit();
  return r;
}

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    try {
      query("SELECT 1");
    } catch (const std::exception& e) {
      FAIL() << "PostgreSQL does not answer on 127.0.0.1:" << kPort << " (" << e.what() << "); "
             << start_hint(kPort, DITHER_TEST_INFRA_RUN);
    }
  }
  void TearDown() override {
    std::lock_guard lock(schemas_mutex);
    for (const std::string& schema : made_schemas) {
      try {
        query("DROP SCHEMA IF EXISTS " + postgres::quote_identifier(schema) + " CASCADE");
      } catch (const std::exception&) {
        // The server may be gone already; the names are unique, so leftovers harm nobody.
      }
    }
  }
};
const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

PostgresOptions options_for(std::string schema, int pool_size = 4) {
  return PostgresOptions{
      .connection = conninfo(), .schema = std::move(schema), .pool_size = pool_size};
}

template <class T>
std::unique_ptr<T> must(Result<std::unique_ptr<T>> opened) {
  return sql_testing::must(std::move(opened), "; " + start_hint(kPort, DITHER_TEST_INFRA_RUN));
}

// schema_migrations of `schema` as "version@applied_at by application".
std::vector<std::string> applied_migrations(const std::string& schema) {
  std::vector<std::string> rows;
  for (const auto& row :
       query("SELECT version, applied_at, application FROM " + postgres::quote_identifier(schema) +
             ".schema_migrations ORDER BY version")) {
    rows.push_back(row[0].as<std::string>() + "@" + row[1].as<std::string>() + " by " +
                   row[2].as<std::string>());
  }
  return rows;
}

// Takes `schema` back to the schema version before `version` (sql_testing::Backend::downgrade).
void downgrade(const std::string& schema, int version, const std::string& undo) {
  const std::string q = postgres::quote_identifier(schema);
  query("SET search_path TO " + q + "; " + undo + " DELETE FROM " + q +
        ".schema_migrations WHERE version = " + std::to_string(version));
}

// Opens a store with `open` in a schema of its own, in a variant of the contract runs: a pool of
// four connections or of one.
template <class Port>
sql_testing::Opener<Port> opener(Result<std::unique_ptr<Port>> (*open)(const PostgresOptions&)) {
  return [open](const std::string& schema, const std::string& variant) {
    return must(open(options_for(schema, variant == "pool1" ? 1 : 4)));
  };
}

const sql_testing::Backend& backend() {
  static const sql_testing::Backend b{
      .variants = {"pool4", "pool1"},
      .fresh_place = fresh_schema,
      .images = opener(&open_postgres_image_repository),
      .dithers = opener(&open_postgres_dither_repository),
      .notifications = opener(&open_postgres_notification_repository),
      .identities = opener(&open_postgres_identity_store),
      .applied_migrations = applied_migrations,
      .downgrade = downgrade,
      .migrations = {.image_owners = 3,
                     .images = 5,
                     .dither_owners = 3,
                     .dither_canonical = 6,
                     .dithers = 8,
                     .image_frames = 5,
                     .original_frames = 8},
  };
  return b;
}

DITHER_INSTANTIATE_SQL_STORE_CONTRACTS(Postgres, backend());
const bool kUpgradeTests = sql_testing::register_upgrade_tests("Postgres", backend);

// `schema` holds `count` migrations, each applied by `application`.
void expect_applied_by(const std::string& schema, size_t count, const std::string& application) {
  const std::vector<std::string> applied = applied_migrations(schema);
  ASSERT_EQ(applied.size(), count);
  for (const std::string& row : applied) {
    EXPECT_NE(row.find("by " + application), std::string::npos) << row;
  }
}

// A store (`open`) in a fresh schema applies `count` migrations there as `application`; the
// store `refusing` will not open that schema, nor will `open` open one that `foreign` made.
template <class Own, class Refusing, class Foreign>
void check_a_schema_of_its_own(
    Result<std::unique_ptr<Own>> (*open)(const PostgresOptions&), size_t count,
    const std::string& application,
    Result<std::unique_ptr<Refusing>> (*refusing)(const PostgresOptions&),
    Result<std::unique_ptr<Foreign>> (*foreign)(const PostgresOptions&)) {
  const std::string schema = fresh_schema();
  must(open(options_for(schema))).reset();
  expect_applied_by(schema, count, application);
  sql_testing::expect_refused(refusing(options_for(schema)), ErrorKind::kUnsupported);
  const std::string other = fresh_schema();
  must(foreign(options_for(other))).reset();
  sql_testing::expect_refused(open(options_for(other)), ErrorKind::kUnsupported);
}

bool table_exists(const std::string& schema, const std::string& table) {
  return query("SELECT to_regclass('" + postgres::quote_identifier(schema) + "." + table +
               "') IS NOT NULL")[0][0]
      .as<bool>();
}

TEST(PostgresMigrations, ApplyOnceAndSurviveReopening) {
  const std::vector<std::string> first = sql_testing::check_migrations_apply_once(backend());
  ASSERT_EQ(first.size(), 5u);
  EXPECT_NE(first[2].find("by dither-upload"), std::string::npos) << first[2];
}

TEST(PostgresMigrations, ANewerSchemaVersionIsRefused) {
  const std::string schema = fresh_schema();
  must(open_postgres_dither_repository(options_for(schema))).reset();
  query("INSERT INTO " + postgres::quote_identifier(schema) +
        ".schema_migrations (version, application, applied_at) VALUES (99, 'dither-dither', 0)");
  sql_testing::expect_refused(open_postgres_dither_repository(options_for(schema)),
                              ErrorKind::kUnsupported, "newer");
}

TEST(PostgresMigrations, AnotherServicesSchemaOrAForeignOneIsRefused) {
  const std::string schema = fresh_schema();
  must(open_postgres_image_repository(options_for(schema))).reset();
  sql_testing::expect_refused(open_postgres_dither_repository(options_for(schema)),
                              ErrorKind::kUnsupported, "dither-upload");

  const std::string foreign = fresh_schema();
  query("CREATE SCHEMA " + postgres::quote_identifier(foreign) + "; CREATE TABLE " +
        postgres::quote_identifier(foreign) + ".something (x INTEGER)");
  sql_testing::expect_refused(open_postgres_image_repository(options_for(foreign)),
                              ErrorKind::kUnsupported);
  EXPECT_FALSE(table_exists(foreign, "images"));
}

TEST(PostgresMigrations, AMigrationThatFailsLeavesNoTrace) {
  static constexpr std::array<postgres::Migration, 2> kBroken = {{
      {1, "CREATE TABLE a (x INTEGER);"},
      {2, "CREATE TABLE b (y INTEGER); THIS IS NOT SQL;"},
  }};
  static constexpr postgres::Schema kSchema{"a test schema", "dither-test", kBroken};
  const std::string schema = fresh_schema();
  auto db = postgres::Database::open(options_for(schema), kSchema, "unused");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().kind, ErrorKind::kInternal);
  EXPECT_NE(db.error().message.find("migration 2"), std::string::npos) << db.error().message;
  EXPECT_EQ(applied_migrations(schema).size(), 1u);  // migration 1 stays applied
  EXPECT_TRUE(table_exists(schema, "a"));
  EXPECT_FALSE(table_exists(schema, "b"));
}

TEST(PostgresMigrations, ConcurrentOpenersOfOneSchemaTakeTurns) {
  const std::string schema = fresh_schema();
  constexpr int kOpeners = 6;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&] {
      auto repo = open_postgres_dither_repository(options_for(schema, 1));
      if (!repo.ok()) {
        ++failures;
        ADD_FAILURE() << repo.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(applied_migrations(schema).size(), 8u);
}

TEST(PostgresRepositories, DefaultSchemasAreUploadAndDither) {
  auto images = must(open_postgres_image_repository({.connection = conninfo()}));
  auto dithers = must(open_postgres_dither_repository({.connection = conninfo()}));
  ASSERT_TRUE(images && dithers);
  EXPECT_TRUE(images->ping().ok());
  EXPECT_TRUE(table_exists("upload", "images"));
  EXPECT_TRUE(table_exists("dither", "dithers"));
}

TEST(PostgresRepositories, TwoServicesInOneDatabaseKeepTheirOwnTables) {
  const std::string upload = fresh_schema("upload");
  const std::string dither = fresh_schema("dither");
  auto images = must(open_postgres_image_repository(options_for(upload)));
  auto dithers = must(open_postgres_dither_repository(options_for(dither)));
  ASSERT_TRUE(images && dithers);
  sql_testing::check_stores_side_by_side(*images, *dithers);
  // Schema names are identifiers, not SQL: quotes and capitals are kept as given.
  const std::string odd = fresh_schema("Odd \"name\"; DROP");
  auto odd_images = must(open_postgres_image_repository(options_for(odd)));
  ASSERT_TRUE(odd_images);
  const ImageRecord image = sample_image();
  EXPECT_TRUE(odd_images->insert_image(image, uploaded(image)).ok());
  EXPECT_TRUE(table_exists(odd, "images"));
}

TEST(PostgresRepositories, DataSurvivesReopening) {
  sql_testing::check_data_survives_reopening(backend(), sql_testing::Claims::kKeptForTheirLease);
}

TEST(PostgresRepositories, BadValuesAreInvalidArgumentsWithoutSqlInMessages) {
  auto dithers = must(open_postgres_dither_repository(options_for(fresh_schema())));
  auto images = must(open_postgres_image_repository(options_for(fresh_schema())));
  sql_testing::check_missing_ids_are_invalid_arguments(*dithers, *images);

  // Text that PostgreSQL cannot store: a NUL byte (libpq would cut it), bytes that are not UTF-8.
  ImageRecord nul = sample_image();
  nul.filename = std::string("a\0b.jpg", 7);
  auto refused = images->insert_image(nul, uploaded(nul));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kInvalidArgument);
  ImageRecord latin1 = sample_image();
  latin1.filename = "caf\xE9.jpg";
  auto bad = images->insert_image(latin1, uploaded(latin1));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument) << bad.error().message;
  EXPECT_EQ(contract::all_pending(*images).size(), 1u);  // neither queued a message
}

TEST(PostgresNotifications, DefaultSchemaIsNotifyAndItIsTheStoresOwn) {
  auto repo = must(open_postgres_notification_repository({.connection = conninfo()}));
  ASSERT_TRUE(repo);
  EXPECT_TRUE(repo->ping().ok());
  EXPECT_TRUE(table_exists("notify", "notifications"));

  check_a_schema_of_its_own(open_postgres_notification_repository, 3, "dither-notify",
                            open_postgres_dither_repository, open_postgres_image_repository);
}

TEST(PostgresNotifications, ClaimsSurviveReopeningUntilTheirLeaseEnds) {
  // Unlike the embedded store, a shared server's claims may belong to a live process elsewhere:
  // opening frees nothing; a dead sender's claims end with their lease.
  const std::string schema = fresh_schema();
  int64_t held = 0;
  {
    auto repo = must(open_postgres_notification_repository(options_for(schema)));
    ASSERT_TRUE(repo);
    ASSERT_TRUE(*repo->record(sample_notification(1), "m-1"));
    ASSERT_TRUE(*repo->record(sample_notification(2), "m-2"));
    auto long_lease = repo->claim_due(1, "a", std::chrono::seconds{600});
    ASSERT_TRUE(long_lease.ok() && long_lease->size() == 1u);
    held = (*long_lease)[0].id;
    auto short_lease = repo->claim_due(1, "b", std::chrono::seconds{1});
    ASSERT_TRUE(short_lease.ok() && short_lease->size() == 1u);
  }
  auto repo = must(open_postgres_notification_repository(options_for(schema)));
  ASSERT_TRUE(repo);
  auto none = repo->claim_due(10, "c", std::chrono::seconds{600});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  std::this_thread::sleep_for(std::chrono::milliseconds{1100});
  auto freed = repo->claim_due(10, "c", std::chrono::seconds{600});
  ASSERT_TRUE(freed.ok());
  ASSERT_EQ(freed->size(), 1u);
  EXPECT_NE((*freed)[0].id, held);
  EXPECT_FALSE(*repo->record(sample_notification(3), "m-1"));  // processed ids persist
}

TEST(PostgresNotifications, TextPostgreSQLCannotStoreIsAnInvalidArgument) {
  auto repo = must(open_postgres_notification_repository(options_for(fresh_schema())));
  ASSERT_TRUE(repo);
  Notification nul = sample_notification(1);
  nul.mail.html = std::string("<p>a\0b</p>", 10);
  auto refused = repo->record(nul, "m-1");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kInvalidArgument);
  Notification latin1 = sample_notification(2);
  latin1.mail.subject = "caf\xE9";
  auto bad = repo->record(latin1, "m-2");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument) << bad.error().message;
  auto all = repo->list({10, std::nullopt, ""});
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->items.empty());
  EXPECT_TRUE(*repo->record(sample_notification(1), "m-1"));  // the refused calls left no trace
}

TEST(PostgresRepositories, HeadersRoundTripAnyBytes) {
  const Headers headers = {{"b", std::string("\xff\xfe nul:\0:end", 12)},
                           {"a", "[\"json\", {}]"},
                           {"b", ""},
                           {"", "empty name"}};
  EXPECT_EQ(postgres::decode_headers(postgres::encode_headers(headers)), headers);
  EXPECT_EQ(postgres::decode_headers(postgres::encode_headers({})), Headers{});
  EXPECT_THROW(postgres::decode_headers(std::string_view("\x00\x00\x00\x09short", 9)),
               postgres::PgError);

  auto images = must(open_postgres_image_repository(options_for(fresh_schema())));
  const ImageRecord image = sample_image();
  Message m = uploaded(image);
  m.headers.insert(m.headers.end(), headers.begin(), headers.end());
  ASSERT_TRUE(images->insert_image(image, m).ok());
  contract::expect_outbox(*images, {m});
}

TEST(PostgresRepositories, ARelayNeverSeesALaterEntryBeforeAnEarlierOne) {
  // Writers commit concurrently; the relay reads and removes as it goes. Entries must appear in
  // commit order: once it has seen seq n, nothing below n may turn up later.
  auto images = must(open_postgres_image_repository(options_for(fresh_schema(), 8)));
  constexpr int kWriters = 6;
  constexpr int kPerWriter = 25;
  std::atomic<bool> writing{true};
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&] {
      for (int i = 0; i < kPerWriter; ++i) {
        const ImageRecord r = sample_image();
        if (!images->insert_image(r, uploaded(r)).ok()) ++failures;
      }
    });
  }
  int64_t last = 0;
  int seen = 0;
  int out_of_order = 0;
  auto drain = [&] {
    auto pending = images->pending_messages(50);
    ASSERT_TRUE(pending.ok()) << pending.error().message;
    for (const OutboxEntry& e : *pending) {
      if (e.seq <= last) ++out_of_order;
      last = std::max(last, e.seq);
      ++seen;
      ASSERT_TRUE(images->remove_message(e.seq).ok());
    }
  };
  std::thread stopper([&] {
    for (auto& t : writers) t.join();
    writing = false;
  });
  while (writing) drain();
  stopper.join();
  drain();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(seen, kWriters * kPerWriter);
}

TEST(PostgresRepositories, TwoProcessesSharingTheQueueNeverClaimTheSameDither) {
  const std::string schema = fresh_schema();
  auto a = must(open_postgres_dither_repository(options_for(schema, 2)));
  auto b = must(open_postgres_dither_repository(options_for(schema, 2)));
  ASSERT_TRUE(a && b);
  constexpr int kDithers = 80;
  for (int i = 0; i < kDithers; ++i) {
    DitherRecord d;
    d.uuid = new_image_id();
    d.request_id = "r-" + std::to_string(i);
    ASSERT_TRUE(a->create_dither(d).ok());
  }
  std::mutex mutex;
  std::vector<int64_t> claimed;
  std::vector<std::thread> workers;
  for (int w = 0; w < 6; ++w) {
    DitherRepository& repo = w % 2 == 0 ? *a : *b;
    workers.emplace_back([&, w] {
      const std::string name = "host-" + std::to_string(w % 2) + ":1:" + std::to_string(w);
      for (;;) {
        auto got = repo.claim_dithers(2, name, std::chrono::seconds{600});
        ASSERT_TRUE(got.ok()) << got.error().message;
        if (got->empty()) return;
        std::lock_guard lock(mutex);
        for (const DitherRecord& d : *got) claimed.push_back(d.id.value);
      }
    });
  }
  for (auto& t : workers) t.join();
  std::sort(claimed.begin(), claimed.end());
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kDithers));
  EXPECT_EQ(std::adjacent_find(claimed.begin(), claimed.end()), claimed.end()) << "a duplicate";
}

TEST(PostgresPool, NeverMoreConnectionsThanThePoolSize) {
  const std::string application = "pool-test-" + fresh_schema();
  PostgresOptions options = options_for(fresh_schema(), 3);
  options.connection = conninfo(kPort, application);
  auto images = must(open_postgres_image_repository(options));
  ASSERT_TRUE(images);
  const std::string count_sql =
      "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + application + "'";

  std::atomic<bool> running{true};
  std::atomic<int> failures{0};
  int most = 0;
  pqxx::connection observer(conninfo());
  std::thread sampler([&] {
    while (running) {
      pqxx::nontransaction tx(observer);
      most = std::max(most, tx.exec(count_sql)[0][0].as<int>());
      std::this_thread::sleep_for(std::chrono::milliseconds{2});
    }
  });
  std::vector<std::thread> callers;
  for (int t = 0; t < 12; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        const ImageRecord r = sample_image();
        if (!images->insert_image(r, uploaded(r)).ok()) ++failures;
        if (!images->get_image(r.uuid).ok()) ++failures;
        if (!images->list_images({20, std::nullopt, ""}).ok()) ++failures;
      }
    });
  }
  for (auto& t : callers) t.join();
  running = false;
  sampler.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(most, 1);
  EXPECT_LE(most, 3);
  images.reset();  // closes its connections (the server notices within moments)
  int left = -1;
  for (int i = 0; i < 200 && left != 0; ++i) {
    pqxx::nontransaction tx(observer);
    left = tx.exec(count_sql)[0][0].as<int>();
    if (left != 0) std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  EXPECT_EQ(left, 0);
}

TEST(PostgresPool, ACallerWaitsForAFreeConnectionThenGivesUp) {
  postgres::Pool pool("pool_test", postgres::effective_conninfo(conninfo()), 2,
                      std::chrono::milliseconds{300});
  // What the metrics read (postgres_pool_stats): this pool among the process's live ones.
  const auto stats_of_pool = [] {
    for (const PostgresPoolStats& s : postgres_pool_stats()) {
      if (s.schema == "pool_test") return s;
    }
    ADD_FAILURE() << "the pool is not listed";
    return PostgresPoolStats{};
  };
  EXPECT_EQ(stats_of_pool().max_connections, 2);
  EXPECT_EQ(stats_of_pool().in_use, 0);
  std::optional<postgres::Pool::Lease> first(pool.acquire());
  std::optional<postgres::Pool::Lease> second(pool.acquire());
  EXPECT_EQ(pool.open_connections(), 2);
  EXPECT_EQ(stats_of_pool().in_use, 2);
  EXPECT_EQ(stats_of_pool().waits, 0u);
  const auto start = Clock::now();
  try {
    postgres::Pool::Lease third = pool.acquire();
    ADD_FAILURE() << "a third connection was handed out";
  } catch (const postgres::PgError& e) {
    EXPECT_EQ(e.error().kind, ErrorKind::kUnavailable);
  }
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds{290});
  EXPECT_LT(waited, std::chrono::seconds{2});
  EXPECT_EQ(stats_of_pool().waits, 1u);
  EXPECT_EQ(stats_of_pool().timeouts, 1u);
  EXPECT_GE(stats_of_pool().wait_seconds, 0.29);

  // A connection given back while someone waits goes to the waiter, still open.
  const int pid = first->session().connection().backendpid();
  std::thread giver([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
    first.reset();
  });
  postgres::Pool::Lease waiter = pool.acquire();
  giver.join();
  EXPECT_EQ(waiter.session().connection().backendpid(), pid);
  EXPECT_EQ(pool.open_connections(), 2);
  // A broken one is closed, freeing its place for a new connection.
  waiter.mark_broken();
  { postgres::Pool::Lease gone = std::move(waiter); }
  EXPECT_EQ(pool.open_connections(), 1);
  postgres::Pool::Lease fresh = pool.acquire();
  EXPECT_NE(fresh.session().connection().backendpid(), pid);
  EXPECT_EQ(pool.open_connections(), 2);
  const PostgresPoolStats end = stats_of_pool();
  EXPECT_EQ(end.waits, 2u);  // the waiter given `first`
  EXPECT_EQ(end.timeouts, 1u);
  EXPECT_EQ(end.in_use, 2);  // `second` and `fresh`
  EXPECT_EQ(end.idle, 0);
}

TEST(PostgresPool, BadOptionsAreRefused) {
  for (int size : {0, -1, 101}) {
    auto r = open_postgres_image_repository(options_for(fresh_schema(), size));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument) << size;
  }
  auto long_name = open_postgres_image_repository(options_for(std::string(64, 's')));
  ASSERT_FALSE(long_name.ok());
  EXPECT_EQ(long_name.error().kind, ErrorKind::kInvalidArgument);
  auto malformed = open_postgres_image_repository({.connection = "host='unterminated"});
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.error().kind, ErrorKind::kInvalidArgument);
}

TEST(PostgresConninfo, QuotesEveryValue) {
  EXPECT_EQ(postgres_conninfo("h", 5432, "u", "p w'\\x", "d b"),
            "host='h' port='5432' user='u' password='p w\\'\\\\x' dbname='d b'");
  // What libpq makes of it: the same values.
  const std::string effective =
      postgres::effective_conninfo(postgres_conninfo("h", 1, "u", "p w'\\x", "d"));
  EXPECT_NE(effective.find("password='p w\\'\\\\x'"), std::string::npos) << effective;
  EXPECT_NE(effective.find("connect_timeout='3'"), std::string::npos) << effective;
  // A caller's own setting wins; URIs work too.
  const std::string uri =
      postgres::effective_conninfo("postgresql://u@h:7/d?connect_timeout=9&application_name=x");
  EXPECT_NE(uri.find("connect_timeout='9'"), std::string::npos) << uri;
  EXPECT_EQ(uri.find("connect_timeout='3'"), std::string::npos) << uri;
}

// A loopback port with nothing listening on it (0 if none could be found).
int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                     getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0;
  close(fd);
  return bound ? ntohs(address.sin_port) : 0;
}

TEST(PostgresAvailability, NoServerIsUnavailableAtOnce) {
  const int port = closed_port();
  ASSERT_NE(port, 0);
  const auto start = Clock::now();
  auto r = open_postgres_image_repository({.connection = conninfo(port), .schema = fresh_schema()});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable) << r.error().message;
  EXPECT_EQ(r.error().message.find("password"), std::string::npos) << r.error().message;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds{2});
}

TEST(PostgresAvailability, AServerThatNeverAnswersTimesOutInAFewSeconds) {
  // Listening, so the TCP connection is made, but nobody ever speaks PostgreSQL on it.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t size = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  const auto start = Clock::now();
  auto r = open_postgres_image_repository(
      {.connection = conninfo(ntohs(address.sin_port)), .schema = fresh_schema()});
  const auto waited = Clock::now() - start;
  close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable) << r.error().message;
  EXPECT_GE(waited, std::chrono::seconds{1});
  EXPECT_LT(waited, std::chrono::seconds{5});
}

// A PostgreSQL server of this test's own (scripts/infra/postgres.sh with a state directory and a
// port next to the shared one), so that stopping it disturbs no other test.
class PrivateServer {
 public:
  PrivateServer()
      : port_(kPort + 1), run_dir_(std::string(DITHER_TEST_INFRA_RUN) + "/postgres-restart-test") {}
  ~PrivateServer() { run("stop"); }
  int port() const { return port_; }
  // Runs the script; true when it succeeded.
  bool run(const std::string& command) const {
    const std::string line =
        "DITHER_INFRA_RUN='" + run_dir_ + "' POSTGRES_PORT=" + std::to_string(port_) +
        " '" DITHER_SOURCE_DIR "/scripts/infra/postgres.sh' " + command + " >/dev/null 2>&1";
    return std::system(line.c_str()) == 0;
  }

 private:
  int port_;
  std::string run_dir_;
};

TEST(PostgresAvailability, UnavailableWhileTheServerIsDownAndRecoversWithoutReopening) {
  PrivateServer server;
  ASSERT_TRUE(server.run("start"))
      << "the private server did not start; "
      << start_hint(server.port(), DITHER_TEST_INFRA_RUN "/postgres-restart-test");
  const std::string schema = fresh_schema();
  auto images = must(open_postgres_image_repository(
      {.connection = conninfo(server.port()), .schema = schema, .pool_size = 3}));
  auto dithers = must(open_postgres_dither_repository(
      {.connection = conninfo(server.port()), .schema = schema + "_d", .pool_size = 2}));
  ASSERT_TRUE(images && dithers);
  const ImageRecord before = sample_image();
  ASSERT_TRUE(images->insert_image(before, uploaded(before)).ok());
  // Several idle connections in the pool, all of which the restart will break.
  {
    std::vector<std::thread> warm;
    for (int i = 0; i < 3; ++i) {
      warm.emplace_back([&] { EXPECT_TRUE(images->list_images({5, std::nullopt, ""}).ok()); });
    }
    for (auto& t : warm) t.join();
  }
  ASSERT_TRUE(dithers->ping().ok());

  ASSERT_TRUE(server.run("stop"));
  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    const Status ping = images->ping();
    ASSERT_FALSE(ping.ok());
    EXPECT_EQ(ping.error().kind, ErrorKind::kUnavailable) << ping.error().message;
    const ImageRecord during = sample_image();
    auto inserted = images->insert_image(during, uploaded(during));
    ASSERT_FALSE(inserted.ok());
    EXPECT_EQ(inserted.error().kind, ErrorKind::kUnavailable);
    auto claimed = dithers->claim_dithers(1, "w", std::chrono::seconds{60});
    ASSERT_FALSE(claimed.ok());
    EXPECT_EQ(claimed.error().kind, ErrorKind::kUnavailable);
    EXPECT_LT(Clock::now() - start, std::chrono::seconds{3});
  }

  ASSERT_TRUE(server.run("start"));
  // The very first calls succeed: the broken connections are replaced, no reopening needed.
  EXPECT_TRUE(images->ping().ok());
  auto got = images->get_image(before.uuid);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->id, (*images->list_images({1, std::nullopt, ""})).items.at(0).id);
  const ImageRecord after = sample_image();
  EXPECT_TRUE(images->insert_image(after, uploaded(after)).ok());
  EXPECT_EQ(contract::all_pending(*images).size(), 2u);
  EXPECT_TRUE(dithers->claim_dithers(1, "w", std::chrono::seconds{60}).ok());

  // Stopped again while callers are busy: they fail with kUnavailable, never hang or crash.
  std::atomic<bool> stop_callers{false};
  std::atomic<int> other_errors{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      while (!stop_callers) {
        const ImageRecord r = sample_image();
        auto result = images->insert_image(r, uploaded(r));
        if (!result.ok() && result.error().kind != ErrorKind::kUnavailable) ++other_errors;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  ASSERT_TRUE(server.run("stop"));
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  ASSERT_TRUE(server.run("start"));
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  stop_callers = true;
  for (auto& t : callers) t.join();
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_TRUE(images->ping().ok());

  images.reset();
  dithers.reset();
  try {
    query("DROP SCHEMA " + postgres::quote_identifier(schema) + " CASCADE; DROP SCHEMA " +
              postgres::quote_identifier(schema + "_d") + " CASCADE",
          server.port());
  } catch (const std::exception&) {
  }
}

// Preset owners and names compare and sort as bytes, as in SQLite, whatever the database's
// collation (the test server's C.UTF-8 sorts as bytes anyway; en_US.UTF-8 would not).
TEST(PostgresPresets, OwnersAndNamesUseTheByteCollation) {
  const std::string schema = fresh_schema();
  must(open_postgres_dither_repository(options_for(schema))).reset();
  // fresh_schema() names are letters, digits and '_': no quoting needed.
  const pqxx::result columns = query(
      "SELECT column_name, collation_name FROM information_schema.columns WHERE table_schema = '" +
      schema +
      "' AND table_name = 'presets' AND column_name IN ('owner', 'name') ORDER BY column_name");
  ASSERT_EQ(columns.size(), 2u);
  for (const auto& row : columns) {
    EXPECT_EQ(row[1].as<std::string>(""), "C") << row[0].as<std::string>();
  }
}

TEST(PostgresIdentity, DefaultSchemaIsAuthAndItIsTheStoresOwn) {
  auto store = must(open_postgres_identity_store({.connection = conninfo()}));
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->ping().ok());
  EXPECT_TRUE(table_exists("auth", "api_keys"));
  EXPECT_TRUE(table_exists("auth", "sessions"));

  check_a_schema_of_its_own(open_postgres_identity_store, 1, "dither-auth",
                            open_postgres_image_repository, open_postgres_notification_repository);
}

}  // namespace
}  // namespace dither
