#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/inproc/in_process_bus.h"
#include "messaging/event_log.h"
#include "messaging/events.h"
#include "messaging/messaging_metrics.h"
#include "messaging/outbox_relay.h"
#include "observability/metrics.h"

namespace dither {
namespace {

// An outbox in memory; `fail_reads` makes pending_messages fail that many times.
class MemoryOutbox : public Outbox {
 public:
  void add(Message m) {
    std::lock_guard lock(mutex_);
    OutboxEntry entry;
    entry.seq = ++seq_;
    entry.message = std::move(m);
    entries_.push_back(std::move(entry));
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
      if (e.parked_at == 0) out.push_back(e);
    }
    return out;
  }
  Status remove_message(int64_t seq) override {
    std::lock_guard lock(mutex_);
    std::erase_if(entries_, [&](const OutboxEntry& e) { return e.seq == seq; });
    return {};
  }
  Status record_publish_failure(int64_t seq, std::string_view error, bool park) override {
    std::lock_guard lock(mutex_);
    for (OutboxEntry& e : entries_) {
      if (e.seq != seq) continue;
      ++e.attempts;
      e.last_error = std::string(error);
      if (park) e.parked_at = 1;
    }
    return {};
  }
  Result<std::vector<OutboxEntry>> parked_messages(int limit) override {
    std::lock_guard lock(mutex_);
    std::vector<OutboxEntry> out;
    for (const auto& e : entries_) {
      if (static_cast<int>(out.size()) == limit) break;
      if (e.parked_at != 0) out.push_back(e);
    }
    return out;
  }
  Status republish(int64_t seq) override {
    std::lock_guard lock(mutex_);
    for (OutboxEntry& e : entries_) {
      if (e.seq == seq && e.parked_at != 0) {
        e.parked_at = 0;
        e.attempts = 0;
        return {};
      }
    }
    return make_error(ErrorKind::kNotFound, "no parked entry");
  }
  Result<OutboxStats> outbox_stats() override {
    std::lock_guard lock(mutex_);
    OutboxStats stats;
    for (const auto& e : entries_) ++(e.parked_at == 0 ? stats.pending : stats.parked);
    return stats;
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

// A bus whose publish() answers what `answer` says (OK: the message is taken and recorded).
class ScriptedBus : public EventBus {
 public:
  explicit ScriptedBus(std::function<Status(const Message&)> answer) : answer_(std::move(answer)) {}
  Status publish(const Message& message) override {
    ++calls;
    Status s = answer_(message);
    if (s) {
      std::lock_guard lock(mutex_);
      published_.push_back(message.body);
    }
    return s;
  }
  void subscribe(Subscription) override {}
  Status start() override { return {}; }
  void stop() override {}
  std::string_view name() const override { return "scripted"; }
  void set_observer(BusObserver*) override {}
  std::vector<std::string> published() {
    std::lock_guard lock(mutex_);
    return published_;
  }
  std::atomic<int> calls{0};

 private:
  std::function<Status(const Message&)> answer_;
  std::mutex mutex_;
  std::vector<std::string> published_;
};

std::string body_of(int n) { return "{\"n\":" + std::to_string(n) + "}"; }

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

// The value of one series in `text` ("name{labels}" as rendered), -1 when absent.
double series(const std::string& text, const std::string& name) {
  const size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

TEST(MessagingMetrics, CountPublishesConsumesDeadLettersAndTheOutboxBacklog) {
  observability::Metrics metrics("test");
  MessagingMetrics messaging(metrics);
  MemoryOutbox outbox;
  InProcessBus bus;
  bus.set_observer(&messaging);
  bus.subscribe({"images", "g", [](const Message& m) -> Status {
                   if (m.body == "poison") return make_error(ErrorKind::kInvalidArgument, "no");
                   return {};
                 }});
  ASSERT_TRUE(bus.start().ok());
  OutboxRelay relay(outbox, bus, "upload", std::chrono::milliseconds{20});
  relay.set_metrics(messaging);
  outbox.add(make_message("images", kImageUploaded, "k", "one"));
  outbox.add(make_message("images", kImageUploaded, "k", "two"));
  std::string text = metrics.render();
  EXPECT_EQ(series(text, "dither_outbox_messages{outbox=\"upload\",state=\"pending\"}"), 2);
  EXPECT_EQ(series(text, "dither_outbox_messages{outbox=\"upload\",state=\"parked\"}"), 0);
  outbox.add(make_message("images", kImageUploaded, "k", "poison"));
  relay.start();
  relay.notify();
  relay.drain();
  relay.stop();
  text = metrics.render();
  EXPECT_EQ(series(text, "dither_messages_published_total{topic=\"images\"}"), 3);
  EXPECT_EQ(series(text, "dither_messages_consumed_total{group=\"g\",topic=\"images\"}"), 2);
  EXPECT_EQ(series(text, "dither_messages_dead_lettered_total{group=\"g\",topic=\"images\"}"), 1);
  EXPECT_EQ(series(text, "dither_outbox_messages{outbox=\"upload\",state=\"pending\"}"), 0);
  EXPECT_EQ(series(text, "dither_outbox_oldest_age_seconds{outbox=\"upload\"}"), 0);
  bus.stop();
}

TEST(MessagingMetrics, APartitionGivenUpLosesItsLagSeries) {
  observability::Metrics metrics("test");
  MessagingMetrics messaging(metrics);
  messaging.lag("g", {{"images", 0, 5}, {"images", 1, 7}});
  std::string text = metrics.render();
  EXPECT_EQ(
      series(text, "dither_consumer_lag_messages{group=\"g\",partition=\"0\",topic=\"images\"}"),
      5);
  EXPECT_EQ(
      series(text, "dither_consumer_lag_messages{group=\"g\",partition=\"1\",topic=\"images\"}"),
      7);
  // A rebalance moved partition 1 to another process: its last value must not linger here.
  messaging.lag("g", {{"images", 0, 2}});
  text = metrics.render();
  EXPECT_EQ(
      series(text, "dither_consumer_lag_messages{group=\"g\",partition=\"0\",topic=\"images\"}"),
      2);
  EXPECT_EQ(
      series(text, "dither_consumer_lag_messages{group=\"g\",partition=\"1\",topic=\"images\"}"),
      -1);
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

TEST(OutboxRelay, APoisonMessageIsParkedAndTheNextOnesGoOn) {
  MemoryOutbox outbox;
  std::atomic<bool> accept_poison{false};
  ScriptedBus bus([&](const Message& m) -> Status {
    if (m.body == body_of(1) && !accept_poison) {
      return make_error(ErrorKind::kTooLarge, "kafka: Broker: Message size too large");
    }
    return {};
  });
  for (int i = 0; i < 3; ++i) outbox.add(make_message("images", kImageUploaded, "k", body_of(i)));
  OutboxRelay relay(outbox, bus, "test", std::chrono::milliseconds{20}, 3);
  relay.start();
  relay.drain();
  EXPECT_EQ(bus.published(), (std::vector<std::string>{body_of(0), body_of(2)}));
  std::vector<OutboxEntry> parked = *outbox.parked_messages(10);
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].message.body, body_of(1));
  EXPECT_EQ(parked[0].attempts, 3);
  EXPECT_NE(parked[0].last_error.find("too large"), std::string::npos);
  EXPECT_EQ(bus.calls.load(), 2 + 3) << "three refusals, no more";

  // Later messages keep flowing past it; an admin publishes it again once it can be.
  outbox.add(make_message("images", kImageUploaded, "k", body_of(3)));
  relay.notify();
  relay.drain();
  accept_poison = true;
  ASSERT_TRUE(outbox.republish(parked[0].seq).ok());
  EXPECT_FALSE(outbox.republish(parked[0].seq).ok());
  relay.notify();
  relay.drain();
  relay.stop();
  EXPECT_EQ(bus.published(),
            (std::vector<std::string>{body_of(0), body_of(2), body_of(3), body_of(1)}));
  EXPECT_EQ(outbox.size(), 0u);
}

TEST(OutboxRelay, ABrokerThatIsDownParksNothing) {
  MemoryOutbox outbox;
  std::atomic<bool> down{true};
  ScriptedBus bus([&](const Message&) -> Status {
    if (down) return make_error(ErrorKind::kUnavailable, "kafka: all brokers are down");
    return {};
  });
  for (int i = 0; i < 2; ++i) outbox.add(make_message("images", kImageUploaded, "k", body_of(i)));
  OutboxRelay relay(outbox, bus, "test", std::chrono::milliseconds{20}, 2);
  relay.start();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds{3};
  while (bus.calls.load() < 5 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  EXPECT_GE(bus.calls.load(), 5) << "retried again and again";
  EXPECT_TRUE(outbox.parked_messages(10)->empty());
  EXPECT_EQ(outbox.size(), 2u);
  EXPECT_EQ(outbox.pending_messages(10)->at(0).attempts, 0) << "transient failures do not count";
  down = false;
  relay.notify();
  relay.drain();
  relay.stop();
  EXPECT_EQ(bus.published(), (std::vector<std::string>{body_of(0), body_of(1)}));
  EXPECT_EQ(outbox.size(), 0u);
}

TEST(OutboxRelay, OnlyPermanentRefusalsCountTowardParking) {
  EXPECT_TRUE(OutboxRelay::counts_toward_parking(ErrorKind::kTooLarge));
  EXPECT_TRUE(OutboxRelay::counts_toward_parking(ErrorKind::kInvalidArgument));
  EXPECT_TRUE(OutboxRelay::counts_toward_parking(ErrorKind::kUnsupported));
  EXPECT_FALSE(OutboxRelay::counts_toward_parking(ErrorKind::kUnavailable));
  EXPECT_FALSE(OutboxRelay::counts_toward_parking(ErrorKind::kInternal));
}

TEST(EventLog, AFullDiskIsLoggedNotFatalAndTheFlowGoesOn) {
  const std::string path =
      ::testing::TempDir() + "/event_log_test_" + std::to_string(getpid()) + ".jsonl";
  std::remove(path.c_str());
  EventLog log(path);
  std::FILE* full = std::fopen("/dev/full", "w");
  ASSERT_NE(full, nullptr);

  InProcessBus bus;
  std::vector<std::string> consumed;
  bus.subscribe({"images", "event-log", [&](const Message& m) { return log.append(m); }});
  bus.subscribe({"images", "consumer", [&](const Message& m) -> Status {
                   consumed.push_back(m.body);
                   return {};
                 }});
  ASSERT_TRUE(bus.start().ok());
  ASSERT_TRUE(bus.publish(make_message("images", kImageUploaded, "k", body_of(0))).ok());
  log.write_to_for_testing(full);
  const auto started = std::chrono::steady_clock::now();
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(bus.publish(make_message("images", kImageUploaded, "k", body_of(i))).ok());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{1}) << "no retries";
  EXPECT_EQ(log.dropped(), 3u);
  log.write_to_for_testing(nullptr);
  ASSERT_TRUE(bus.publish(make_message("images", kImageUploaded, "k", body_of(4))).ok());
  bus.stop();
  std::fclose(full);
  EXPECT_EQ(consumed.size(), 5u);

  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("\"n\":0"), std::string::npos);
  EXPECT_NE(lines[1].find("\"n\":4"), std::string::npos);
  std::remove(path.c_str());
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

// IMAGE_UPLOADED carries an animation's frames; a body without them (older versions, the
// prototype) or with a nonsensical count is a still image.
TEST(Events, ImageUploadedCarriesFramesAndReadsBodiesWithout) {
  ImageUploadedEvent e;
  e.uuid = new_image_id();
  e.url = "http://h/files/originals/x.gif";
  e.blob_key = ObjectKey{"originals/x.gif"};
  e.content_type = "image/gif";
  e.frames = 6;
  const std::string body = image_uploaded_body(e);
  EXPECT_EQ(boost::json::parse(body).as_object().at("frames").as_int64(), 6);
  auto back = read_image_uploaded(body);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->frames, 6);
  EXPECT_EQ(back->content_type, "image/gif");

  e.frames = 1;
  EXPECT_EQ(read_image_uploaded(image_uploaded_body(e))->frames, 1);
  const std::string prefix =
      R"({"uuid":")" + e.uuid.value + R"(","url":"u","blob_key":"originals/x.gif")";
  const std::vector<std::string> tails = {"}",
                                          R"(,"frames":0})",
                                          R"(,"frames":-3})",
                                          R"(,"frames":"6"})",
                                          R"(,"frames":null})",
                                          R"(,"frames":99999999999})"};
  for (const std::string& tail : tails) {
    auto old = read_image_uploaded(prefix + tail);
    ASSERT_TRUE(old.ok()) << tail << ": " << old.error().message;
    EXPECT_EQ(old->frames, 1) << tail;
  }
  EXPECT_EQ(read_image_uploaded(prefix + R"(,"frames":300})")->frames, 300);
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
