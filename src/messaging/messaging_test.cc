#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <deque>
#include <mutex>

#include "adapters/inproc/in_process_bus.h"
#include "messaging/events.h"
#include "messaging/outbox_relay.h"

namespace dither {
namespace {

// An outbox in memory; `fail_reads` makes pending_messages fail that many times.
class MemoryOutbox : public Outbox {
 public:
  void add(Message m) {
    std::lock_guard lock(mutex_);
    entries_.push_back({++seq_, std::move(m)});
  }
  Result<std::vector<OutboxEntry>> pending_messages(int limit) override {
    std::lock_guard lock(mutex_);
    if (fail_reads > 0) {
      --fail_reads;
      return make_error(ErrorKind::kUnavailable, "database busy");
    }
    std::vector<OutboxEntry> out;
    for (const auto& e : entries_) {
      if (static_cast<int>(out.size()) == limit) break;
      out.push_back(e);
    }
    return out;
  }
  Status remove_message(int64_t seq) override {
    std::lock_guard lock(mutex_);
    std::erase_if(entries_, [&](const OutboxEntry& e) { return e.seq == seq; });
    return {};
  }
  size_t size() {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }
  int fail_reads = 0;

 private:
  std::mutex mutex_;
  std::deque<OutboxEntry> entries_;
  int64_t seq_ = 0;
};

TEST(OutboxRelay, PublishesInOrderAndRemovesOnlyAfterPublish) {
  MemoryOutbox outbox;
  InProcessBus bus;
  std::vector<std::string> seen;
  std::atomic<int> failures_left{2};
  bus.subscribe({"images", "g",
                 [&](const Message& m) -> Status {
                   if (m.body == "{\"n\":1}" && failures_left-- > 0) {
                     return make_error(ErrorKind::kUnavailable, "not now");
                   }
                   seen.push_back(m.body);
                   return {};
                 },
                 10});
  ASSERT_TRUE(bus.start().ok());
  for (int i = 0; i < 3; ++i) {
    outbox.add(make_message("images", kImageUploaded, "k", "{\"n\":" + std::to_string(i) + "}"));
  }
  outbox.fail_reads = 1;
  OutboxRelay relay(outbox, bus, "test", std::chrono::milliseconds{20});
  relay.start();
  relay.notify();
  relay.drain();
  relay.stop();
  EXPECT_EQ(seen, (std::vector<std::string>{"{\"n\":0}", "{\"n\":1}", "{\"n\":2}"}));
  EXPECT_EQ(outbox.size(), 0u);
  bus.stop();
}

TEST(OutboxRelay, KeepsMessagesWhileTheBusIsDown) {
  MemoryOutbox outbox;
  InProcessBus bus;  // never started: publish fails
  outbox.add(make_message("images", kImageDeleted, "k", "{}"));
  OutboxRelay relay(outbox, bus, "test", std::chrono::milliseconds{10});
  relay.start();
  relay.notify();
  std::this_thread::sleep_for(std::chrono::milliseconds{100});
  relay.stop();
  EXPECT_EQ(outbox.size(), 1u);
}

TEST(Events, ImageUploadedRoundTripAndPrototypeFields) {
  ImageUploadedEvent e;
  e.uuid = new_image_id();
  e.url = "http://h/files/originals/x.png";
  e.filename = "cat \"1\".png";
  e.blob_key = ObjectKey{"originals/x.png"};
  e.size = 10;
  e.width = 3;
  e.height = 4;
  const std::string body = image_uploaded_body(e);
  // What the Python prototype's consumer reads.
  auto o = boost::json::parse(body).as_object();
  EXPECT_EQ(o.at("uuid").as_string(), e.uuid.value);
  EXPECT_EQ(o.at("url").as_string(), e.url);
  EXPECT_EQ(o.at("filename").as_string(), e.filename);
  EXPECT_FALSE(o.contains("email"));
  auto back = read_image_uploaded(body);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->blob_key.value, "originals/x.png");
  EXPECT_EQ(back->width, 3);
}

TEST(Events, DitherEventsAndBadBodies) {
  DitherEvent e;
  e.uuid = new_image_id();
  e.dither_id = 7;
  e.url_dither = "http://h/files/dithers/u/7.png";
  e.channels = 2;
  const std::string ok_body = dither_event_body(e, false);
  auto o = boost::json::parse(ok_body).as_object();
  EXPECT_EQ(o.at("url_dither").as_string(), e.url_dither);
  EXPECT_FALSE(o.contains("error"));
  auto back = read_dither_event(ok_body);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->dither_id, 7);
  e.error = "too many pixels";
  EXPECT_EQ(read_dither_event(dither_event_body(e, true))->error, "too many pixels");

  for (std::string_view bad : {"", "[]", "{", "{\"uuid\": 3}", "{\"uuid\": \"nope\"}"}) {
    EXPECT_EQ(read_dither_event(bad).error().kind, ErrorKind::kInvalidArgument) << bad;
    EXPECT_FALSE(read_uuid(bad).ok()) << bad;
  }
  // An IMAGE_UPLOADED from the prototype has no blob_key: it cannot be processed here.
  EXPECT_FALSE(read_image_uploaded("{\"uuid\":\"" + e.uuid.value + "\",\"url\":\"u\"}").ok());
}

TEST(Events, DitherDeletedOfOneOrEveryDither) {
  const ImageId uuid = new_image_id();
  // Every dither: the prototype's body, exactly.
  const std::string all = dither_deleted_body({uuid, std::nullopt});
  EXPECT_EQ(all, uuid_body(uuid));
  auto back = read_dither_deleted(all);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->uuid, uuid);
  EXPECT_FALSE(back->dither_id.has_value());

  // One dither: the prototype's field plus dither_id.
  const std::string one = dither_deleted_body({uuid, 42});
  auto o = boost::json::parse(one).as_object();
  EXPECT_EQ(o.at("uuid").as_string(), uuid.value);
  EXPECT_EQ(o.at("dither_id").as_int64(), 42);
  EXPECT_EQ(read_uuid(one)->value, uuid.value) << "a reader of the uuid alone still works";
  back = read_dither_deleted(one);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->dither_id, std::optional<int64_t>{42});

  // Unknown fields are ignored; a null dither_id is the same as none.
  const std::string prefix = "{\"uuid\":\"" + uuid.value + "\"";
  back = read_dither_deleted(prefix + ",\"dither_id\":null,\"later\":[1]}");
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->dither_id.has_value());
  for (std::string_view bad_id :
       {"0", "-3", "1.5", "\"7\"", "true", "{}", "18446744073709551615"}) {
    EXPECT_EQ(
        read_dither_deleted(prefix + ",\"dither_id\":" + std::string(bad_id) + "}").error().kind,
        ErrorKind::kInvalidArgument)
        << bad_id;
  }
  for (std::string_view bad : {"", "[]", "{", "{\"dither_id\": 3}", "{\"uuid\": \"nope\"}"}) {
    EXPECT_EQ(read_dither_deleted(bad).error().kind, ErrorKind::kInvalidArgument) << bad;
  }
}

TEST(Events, IsoTime) {
  EXPECT_EQ(iso_time(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso_time(1796040000123), "2026-11-30T12:00:00.123Z");
}

}  // namespace
}  // namespace dither
