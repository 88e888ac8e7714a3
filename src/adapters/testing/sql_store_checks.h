// What the SQL adapters' tests share (sqlite_adapter_test.cc, postgres_adapter_test.cc): the
// four contract suites instantiated over a Backend, the test records, and the checks that every
// SQL store makes the same way (migrations applied once, stores of an older schema version read
// after the upgrade, bad values refused, data kept across reopening). Header-only.
//
// A Backend names a "place" for a store (a SQLite file, a PostgreSQL schema) and opens each store
// there in one of the variants the contract suites run (SQLite: "file", "file_one_reader",
// "memory"; PostgreSQL: "pool4", "pool1"):
//
//   const sql_testing::Backend& backend() { static const sql_testing::Backend b{...}; return b; }
//   DITHER_INSTANTIATE_SQL_STORE_CONTRACTS(Sqlite, backend());
//   TEST(SqliteOwners, ...) { sql_testing::check_images_before_owners(backend(), 3, 4); }
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ports/testing/contract_helpers.h"
#include "ports/testing/dither_repository_contract.h"
#include "ports/testing/identity_store_contract.h"
#include "ports/testing/image_repository_contract.h"
#include "ports/testing/notification_repository_contract.h"

namespace dither::sql_testing {

// Opens a store of port `Port` at a place in a variant; null (with a test failure) if it failed.
template <class Port>
using Opener =
    std::function<std::unique_ptr<Port>(const std::string& place, const std::string& variant)>;

struct Backend {
  // The variants the contract suites run, each a test parameter of that name; the first is the
  // one the other checks use.
  std::vector<std::string> variants;
  // A place no other test uses; `stem` says what it is for.
  std::function<std::string(const std::string& stem)> fresh_place;
  Opener<ImageRepository> images;
  Opener<DitherRepository> dithers;
  Opener<NotificationRepository> notifications;
  Opener<IdentityStore> identities;
  // The schema_migrations rows of a place, oldest first, each starting "version@".
  std::function<std::vector<std::string>(const std::string& place)> applied_migrations;
  // Takes a place back to the schema version before `version`: runs `undo` (SQL that drops
  // what migration `version` added) there and forgets that `version` was applied, as if an older
  // build had made the place.
  std::function<void(const std::string& place, int version, const std::string& undo)> downgrade;
  // The versions of the migrations the upgrade checks undo, and the latest ones (the
  // notification store's are the same everywhere: owners came with 2 of 3).
  struct Migrations {
    int image_owners;      // gave images their owner
    size_t images;         // the image store's latest
    int dither_owners;     // gave dithers and originals their owner and requester
    int dither_canonical;  // kept the options' form; the next one added the presets
    size_t dithers;        // the dither store's latest
    int image_frames;      // gave images their frame count
    int original_frames;   // gave originals their type and frame count (after the presets)
  } migrations;

  std::unique_ptr<ImageRepository> open_images(const std::string& place) const {
    return images(place, variants.front());
  }
  std::unique_ptr<DitherRepository> open_dithers(const std::string& place) const {
    return dithers(place, variants.front());
  }
  std::unique_ptr<NotificationRepository> open_notifications(const std::string& place) const {
    return notifications(place, variants.front());
  }
};

// The opened store, or null after a test failure naming the error (and `hint`, if any).
template <class T>
std::unique_ptr<T> must(Result<std::unique_ptr<T>> opened, std::string_view hint = "") {
  if (!opened.ok()) {
    ADD_FAILURE() << opened.error().message << hint;
    return nullptr;
  }
  return std::move(*opened);
}

// One contract factory a variant of `backend` (which must outlive the tests), each store in a
// fresh place named after `stem`.
template <class Port>
std::vector<contract::Factory<Port>> factories(const Backend& backend, Opener<Port> Backend::*open,
                                               const std::string& stem) {
  std::vector<contract::Factory<Port>> out;
  for (const std::string& variant : backend.variants) {
    out.push_back({variant, [&backend, open, stem, variant] {
                     return (backend.*open)(backend.fresh_place(stem), variant);
                   }});
  }
  return out;
}

// The four contract suites of src/ports/testing/, instantiated as `prefix`/Suite.Test/variant
// (at namespace scope; the suites' names are declared there).
#define DITHER_INSTANTIATE_SQL_STORE_CONTRACT(prefix, backend, Suite, Port, member, stem)        \
  using ::dither::contract::Suite;                                                               \
  INSTANTIATE_TEST_SUITE_P(prefix, Suite,                                                        \
                           ::testing::ValuesIn(::dither::sql_testing::factories<::dither::Port>( \
                               backend, &::dither::sql_testing::Backend::member, stem)),         \
                           ::dither::contract::FactoryName())
#define DITHER_INSTANTIATE_SQL_STORE_CONTRACTS(prefix, backend)                                    \
  DITHER_INSTANTIATE_SQL_STORE_CONTRACT(prefix, backend, ImageRepositoryContract, ImageRepository, \
                                        images, "img");                                            \
  DITHER_INSTANTIATE_SQL_STORE_CONTRACT(prefix, backend, DitherRepositoryContract,                 \
                                        DitherRepository, dithers, "dit");                         \
  DITHER_INSTANTIATE_SQL_STORE_CONTRACT(prefix, backend, NotificationRepositoryContract,           \
                                        NotificationRepository, notifications, "ntf");             \
  DITHER_INSTANTIATE_SQL_STORE_CONTRACT(prefix, backend, IdentityStoreContract, IdentityStore,     \
                                        identities, "auth")

inline ImageRecord sample_image() {
  ImageRecord r;
  r.uuid = new_image_id();
  r.filename = "x.jpg";
  r.url = "http://h/x.jpg";
  r.content_type = "image/jpeg";
  r.blob_key = ObjectKey{"originals/" + r.uuid.value + ".jpg"};
  return r;
}

inline Message uploaded(const ImageRecord& r) {
  return contract::test_message("images", kImageUploaded, r.uuid.value);
}

inline Notification sample_notification(int64_t dither_id) {
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

// `rows` (schema_migrations, as Backend::applied_migrations gives them) are versions 1 to `count`.
inline void expect_versions(const std::vector<std::string>& rows, size_t count) {
  ASSERT_EQ(rows.size(), count);
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_TRUE(rows[i].starts_with(std::to_string(i + 1) + "@")) << rows[i];
  }
}

// Opening the image store migrates its place to the latest version; opening it again applies
// nothing. Returns the rows (for the backend's own checks of them).
inline std::vector<std::string> check_migrations_apply_once(const Backend& b) {
  const std::string place = b.fresh_place("mig");
  b.open_images(place).reset();
  std::vector<std::string> first = b.applied_migrations(place);
  expect_versions(first, b.migrations.images);
  b.open_images(place).reset();
  EXPECT_EQ(b.applied_migrations(place), first);  // not re-applied: same rows, same times
  return first;
}

// Opening refused: `kind`, and a message that says `why`.
template <class T>
void expect_refused(const Result<T>& opened, ErrorKind kind, std::string_view why = "") {
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().kind, kind) << opened.error().message;
  EXPECT_NE(opened.error().message.find(why), std::string::npos) << opened.error().message;
}

// Whether a store's dither claims outlive it (SQLite frees them at opening: only one process
// uses the file; on a shared server they may be another live process's, so they last their lease).
enum class Claims { kFreedAtOpening, kKeptForTheirLease };

// What the image and dither stores hold, their outboxes and the message ids they processed, is
// there again after reopening.
inline void check_data_survives_reopening(const Backend& b, Claims claims) {
  const std::string image_place = b.fresh_place("upload");
  const std::string dither_place = b.fresh_place("dither");
  const ImageRecord image = sample_image();
  DitherRecord dither;
  {
    auto images = b.open_images(image_place);
    ASSERT_TRUE(images->insert_image(image, uploaded(image)).ok());
    DitherSummary summary;
    summary.dither_id = 1;
    summary.status = std::string(kStatusFinished);
    summary.url_dither = "http://h/d.png";
    ASSERT_TRUE(images->mark_finished(image.uuid, summary, "m-1").ok());

    auto dithers = b.open_dithers(dither_place);
    OriginalRecord original{image.uuid, image.url, image.filename, image.blob_key, ""};
    DitherRecord wanted;
    wanted.uuid = image.uuid;
    auto created = dithers->record_original(original, wanted, "m-0");
    ASSERT_TRUE(created.ok() && created->has_value());
    dither = **created;
    ASSERT_EQ(dithers->claim_dithers(1, "w1", std::chrono::seconds{600})->size(), 1u);
  }
  auto images = b.open_images(image_place);
  auto got = images->get_image(image.uuid);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, kStatusFinished);
  ASSERT_EQ(got->dithers.size(), 1u);
  EXPECT_EQ(got->dithers[0].url_dither, "http://h/d.png");
  EXPECT_EQ(contract::all_pending(*images).size(), 1u);
  EXPECT_FALSE(*images->mark_finished(image.uuid, {}, "m-1"));  // processed ids persist too

  auto dithers = b.open_dithers(dither_place);
  auto again = dithers->get_dither(dither.id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->request_id, "m-0");
  EXPECT_TRUE(dithers->get_original(image.uuid).ok());
  auto claimed = dithers->claim_dithers(1, "w2", std::chrono::seconds{600});
  ASSERT_TRUE(claimed.ok());
  EXPECT_EQ(claimed->size(), claims == Claims::kFreedAtOpening ? 1u : 0u);
}

// Two services' stores side by side (each with a table named outbox): each outbox holds its own.
inline void check_stores_side_by_side(ImageRepository& images, DitherRepository& dithers) {
  const ImageRecord image = sample_image();
  ASSERT_TRUE(images.insert_image(image, uploaded(image)).ok());
  DitherRecord wanted;
  wanted.uuid = image.uuid;
  wanted.request_id = "r-1";
  ASSERT_TRUE(dithers.create_dither(wanted).ok());
  EXPECT_EQ(contract::all_pending(images).size(), 1u);
  EXPECT_TRUE(contract::all_pending(dithers).empty());
}

// A dither without a request id, an original without a message id and an image inserted twice
// are invalid arguments, and the messages show neither SQL nor values.
inline void check_missing_ids_are_invalid_arguments(DitherRepository& dithers,
                                                    ImageRepository& images) {
  DitherRecord wanted;
  wanted.uuid = new_image_id();
  contract::expect_error(dithers.create_dither(wanted), ErrorKind::kInvalidArgument);
  OriginalRecord original{wanted.uuid, "u", "f", ObjectKey{"originals/x.png"}, ""};
  contract::expect_error(dithers.record_original(original, wanted, ""),
                         ErrorKind::kInvalidArgument);
  EXPECT_FALSE(dithers.get_original(wanted.uuid).ok());

  const ImageRecord image = sample_image();
  ASSERT_TRUE(images.insert_image(image, uploaded(image)).ok());
  auto duplicate = images.insert_image(image, uploaded(image));
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(duplicate.error().message.find("INSERT"), std::string::npos)
      << "no SQL in messages: " << duplicate.error().message;
  EXPECT_EQ(duplicate.error().message.find(image.uuid.value), std::string::npos)
      << "no values in messages: " << duplicate.error().message;
}

// Images stored before owners belong to "system".
inline void check_images_before_owners(const Backend& b) {
  const std::string place = b.fresh_place("old_upload");
  ImageRecord image = sample_image();
  image.owner = "alice";  // lost with the column: the older schema had none
  {
    auto images = b.open_images(place);
    ASSERT_TRUE(images && images->insert_image(image, uploaded(image)).ok());
  }
  b.downgrade(place, b.migrations.image_owners,
              "DROP INDEX images_by_owner; ALTER TABLE images DROP COLUMN owner;");

  auto images = b.open_images(place);
  ASSERT_TRUE(images);
  EXPECT_EQ(b.applied_migrations(place).size(), b.migrations.images);
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

// Dithers and originals stored before owners belong to "system".
inline void check_dithers_before_owners(const Backend& b) {
  const std::string place = b.fresh_place("old_dither");
  const ImageId uuid = new_image_id();
  {
    auto dithers = b.open_dithers(place);
    ASSERT_TRUE(dithers);
    OriginalRecord original;
    original.uuid = uuid;
    original.url = "http://h/x.png";
    original.owner = "alice";
    DitherRecord wanted;
    wanted.uuid = uuid;
    wanted.owner = wanted.requested_by = "alice";
    ASSERT_TRUE(dithers->record_original(original, wanted, "m-1").ok());
  }
  b.downgrade(place, b.migrations.dither_owners,
              "DROP INDEX dithers_by_owner; ALTER TABLE dithers DROP COLUMN owner; "
              "ALTER TABLE dithers DROP COLUMN requested_by; "
              "ALTER TABLE originals DROP COLUMN owner;");

  auto dithers = b.open_dithers(place);
  ASSERT_TRUE(dithers);
  EXPECT_EQ(b.applied_migrations(place).size(), b.migrations.dithers);
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

// Notifications stored before owners (migration 2 of 3) belong to "system", with no address hash.
inline void check_notifications_before_owners(const Backend& b) {
  const std::string place = b.fresh_place("old_notify");
  Notification n = sample_notification(1);
  n.owner = "alice";
  n.to_hash = std::string(64, 'a');
  {
    auto repo = b.open_notifications(place);
    ASSERT_TRUE(repo);
    auto recorded = repo->record(n, "m-1");
    ASSERT_TRUE(recorded.ok() && *recorded);
  }
  b.downgrade(place, 2,
              "DROP INDEX notifications_by_owner; DROP INDEX notifications_by_address; "
              "ALTER TABLE notifications DROP COLUMN owner; "
              "ALTER TABLE notifications DROP COLUMN to_hash;");

  auto repo = b.open_notifications(place);
  ASSERT_TRUE(repo);
  EXPECT_EQ(b.applied_migrations(place).size(), 3u);
  auto all = repo->list({.limit = 10, .before = std::nullopt, .owner = "system"});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->items.size(), 1u);
  EXPECT_EQ(all->items[0].owner, "system");
  EXPECT_EQ(all->items[0].to_hash, "");
  EXPECT_EQ(all->items[0].mail.to, n.mail.to);
  EXPECT_EQ(all->items[0].status, kNotificationPending);
}

// Images stored before frames were counted are still images (1 frame).
inline void check_images_before_frames(const Backend& b) {
  const std::string place = b.fresh_place("old_frames");
  ImageRecord image = sample_image();
  image.frames = 12;  // lost with the column
  {
    auto images = b.open_images(place);
    ASSERT_TRUE(images && images->insert_image(image, uploaded(image)).ok());
  }
  b.downgrade(place, b.migrations.image_frames, "ALTER TABLE images DROP COLUMN frames;");
  EXPECT_EQ(b.applied_migrations(place).size(), b.migrations.images - 1);

  auto images = b.open_images(place);
  ASSERT_TRUE(images);
  EXPECT_EQ(b.applied_migrations(place).size(), b.migrations.images);
  auto got = images->get_image(image.uuid);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->frames, 1);
  EXPECT_EQ(got->filename, image.filename);
  image = sample_image();
  image.frames = 5;
  ASSERT_TRUE(images->insert_image(image, uploaded(image)).ok());
  EXPECT_EQ(images->get_image(image.uuid)->frames, 5);
}

// Originals learned before their type and frames were kept are still images of unknown type.
inline void check_originals_before_frames(const Backend& b) {
  const std::string place = b.fresh_place("old_original_frames");
  const ImageId uuid = new_image_id();
  {
    auto dithers = b.open_dithers(place);
    ASSERT_TRUE(dithers);
    OriginalRecord original;
    original.uuid = uuid;
    original.url = "http://h/x.gif";
    original.content_type = "image/gif";
    original.frames = 9;
    ASSERT_TRUE(dithers->record_original(original, std::nullopt, "m-1").ok());
  }
  b.downgrade(place, b.migrations.original_frames,
              "ALTER TABLE originals DROP COLUMN content_type; "
              "ALTER TABLE originals DROP COLUMN frames;");

  auto dithers = b.open_dithers(place);
  ASSERT_TRUE(dithers);
  EXPECT_EQ(b.applied_migrations(place).size(), b.migrations.dithers);
  auto original = dithers->get_original(uuid);
  ASSERT_TRUE(original.ok()) << original.error().message;
  EXPECT_EQ(original->content_type, "");
  EXPECT_EQ(original->frames, 1);
  EXPECT_EQ(original->url, "http://h/x.gif");
}

// A place of the version before canonical options (the presets and the originals' frames came
// after it), holding dithers whose options that version stored as requested: opened by this build,
// they are the legacy rows the service rewrites, oldest first, and each leaves the list once
// rewritten, for good; new dithers never enter it.
inline void check_dithers_before_canonical_options(const Backend& b) {
  const int canonical = b.migrations.dither_canonical;
  const size_t latest = b.migrations.dithers;
  const std::string place = b.fresh_place("old_options");
  const ImageId uuid = new_image_id();
  std::vector<DitherRecord> old;
  {
    auto dithers = b.open_dithers(place);
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
  b.downgrade(place, b.migrations.original_frames,
              "ALTER TABLE originals DROP COLUMN content_type; "
              "ALTER TABLE originals DROP COLUMN frames;");
  b.downgrade(place, canonical + 1, "DROP TABLE presets;");
  b.downgrade(place, canonical,
              "DROP INDEX dithers_legacy_options; ALTER TABLE dithers DROP COLUMN options_form;");
  EXPECT_EQ(b.applied_migrations(place).size(), latest - 3);

  auto dithers = b.open_dithers(place);
  ASSERT_TRUE(dithers);
  EXPECT_EQ(b.applied_migrations(place).size(), latest);
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
  dithers = b.open_dithers(place);
  ASSERT_TRUE(dithers);
  EXPECT_TRUE(dithers->legacy_options(10)->empty());
  EXPECT_TRUE(dithers->put_preset(contract::preset("alice", "crisp")).ok());
}

// Registers the upgrade checks above as the tests <prefix>Owners.ImagesOfTheVersionBefore...,
// <prefix>CanonicalOptions.DithersOfTheVersionBefore... and so on, of the Backend that `backend`
// returns. Called once, before the tests run: `const bool kUpgradeTests = register_...;`.
inline bool register_upgrade_tests(const std::string& prefix, const Backend& (*backend)()) {
  struct Check {
    const char* suite;
    const char* name;
    void (*run)(const Backend&);
  };
  static constexpr Check kChecks[] = {
      {"Owners", "ImagesOfTheVersionBeforeOwnersBelongToTheSystemOwner",
       check_images_before_owners},
      {"Owners", "DithersOfTheVersionBeforeOwnersBelongToTheSystemOwner",
       check_dithers_before_owners},
      {"Owners", "NotificationsOfTheVersionBeforeOwnersBelongToTheSystemOwner",
       check_notifications_before_owners},
      {"CanonicalOptions", "DithersOfTheVersionBeforeAreLegacyUntilRewritten",
       check_dithers_before_canonical_options},
      {"Frames", "ImagesOfTheVersionBeforeFramesAreStill", check_images_before_frames},
      {"Frames", "OriginalsOfTheVersionBeforeFramesAreStill", check_originals_before_frames},
  };
  class CheckTest : public ::testing::Test {
   public:
    CheckTest(const Check& check, const Backend& (*backend)()) : check_(check), backend_(backend) {}
    void TestBody() override { check_.run(backend_()); }

   private:
    const Check& check_;
    const Backend& (*backend_)();
  };
  for (const Check& check : kChecks) {
    ::testing::RegisterTest(
        (prefix + check.suite).c_str(), check.name, nullptr, nullptr, __FILE__, __LINE__,
        [&check, backend]() -> ::testing::Test* { return new CheckTest(check, backend); });
  }
  return true;
}

}  // namespace dither::sql_testing
