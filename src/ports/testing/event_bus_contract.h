// The contract every EventBus adapter must pass (event_bus.h).
//
// Header-only. An adapter's test file includes it once and instantiates it with a factory that
// yields a new bus, not yet started, on every call (for a broker, connected to the same broker, so
// that a second bus can take a group over from a first one):
//
//   INSTANTIATE_TEST_SUITE_P(Kafka, EventBusContract,
//                            ::testing::Values(EventBusFactory{"kafka", [] { return open(); }}),
//                            dither::contract::FactoryName());
//
// Delivery may be synchronous (in process: publish() returns after the handlers) or not (Kafka),
// so the tests wait for what they expect with a deadline. Every test uses topic and group names
// with a random suffix, so the suite can run again and again against one broker.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ports/event_bus.h"
#include "ports/testing/contract_helpers.h"

namespace dither::contract {

using EventBusFactory = Factory<EventBus>;

// Long enough for a Kafka consumer group to form on a slow machine; waits end as soon as what
// they wait for has happened.
inline constexpr std::chrono::seconds kDeliveryDeadline{60};

// "<base>-<8 random hex digits>": a topic or group name no earlier run used.
inline std::string unique_name(std::string_view base) {
  static std::mt19937_64 random{std::random_device{}()};
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(random() & 0xffffffffu));
  return std::string(base) + "-" + suffix;
}

// Records what a subscription receives and lets a test wait for it. `reply` decides what the
// handler returns (OK by default). A Collector must outlive the bus's handler calls: declare it
// before the Running guard that stops the bus.
class Collector {
 public:
  explicit Collector(std::function<Status(const Message&)> reply = {}) : reply_(std::move(reply)) {}

  MessageHandler handler() {
    return [this](const Message& m) -> Status {
      Status result = reply_ ? reply_(m) : Status{};
      // The last touch of *this: a waiter woken here may end the test.
      std::lock_guard lock(mutex_);
      messages_.push_back(m);
      changed_.notify_all();
      return result;
    };
  }

  // Until at least `n` messages arrived; false after the deadline.
  bool wait_for(size_t n, std::chrono::milliseconds deadline = kDeliveryDeadline) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, deadline, [&] { return messages_.size() >= n; });
  }

  // Until a message with this body arrived.
  bool wait_for_body(const std::string& body,
                     std::chrono::milliseconds deadline = kDeliveryDeadline) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, deadline, [&] {
      return std::any_of(messages_.begin(), messages_.end(),
                         [&](const Message& m) { return m.body == body; });
    });
  }

  std::vector<Message> messages() {
    std::lock_guard lock(mutex_);
    return messages_;
  }

  std::vector<std::string> bodies() {
    std::vector<std::string> out;
    for (const Message& m : messages()) out.push_back(m.body);
    return out;
  }

  size_t count(const std::string& body) {
    const std::vector<std::string> all = bodies();
    return static_cast<size_t>(std::count(all.begin(), all.end(), body));
  }

 private:
  std::function<Status(const Message&)> reply_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Message> messages_;
};

// Starts a bus and stops it when the guard goes out of scope. Declared after everything its
// handlers use, it stops the handlers before those go away, even when an assertion ends the test
// early.
class Running {
 public:
  explicit Running(EventBus& bus) : bus_(bus), started_(bus.start()) {}
  ~Running() { bus_.stop(); }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;
  bool ok() const { return started_.ok(); }
  std::string error() const { return started_.ok() ? "" : started_.error().message; }

 private:
  EventBus& bus_;
  Status started_;
};

class EventBusContract : public ::testing::TestWithParam<EventBusFactory> {
 protected:
  void SetUp() override {
    bus_ = make_bus();
    ASSERT_NE(bus_, nullptr) << "the factory could not make a bus";
    topic_ = unique_name("contract");
  }

  void TearDown() override {
    if (bus_) bus_->stop();  // in case the test never started it
  }

  std::unique_ptr<EventBus> make_bus() { return GetParam().make(); }

  // A message on the test's topic whose body is `body` (test_message's headers).
  Message message(const std::string& key, const std::string& body) {
    Message m = test_message(topic_, kImageUploaded, key, body);
    m.body = body;
    return m;
  }

  void publish(const Message& m) { expect_ok(bus_->publish(m)); }

  static Status fail(ErrorKind kind, std::string text) { return make_error(kind, std::move(text)); }

  std::unique_ptr<EventBus> bus_;
  std::string topic_;
};

// The message as published, then the dead-letter headers the bus appended.
inline void expect_dead_letter(const Message& dead, const Message& original,
                               const std::string& reason, const std::string& group) {
  EXPECT_EQ(dead.topic, Topics::dead_letter(original.topic));
  EXPECT_EQ(dead.key, original.key);
  EXPECT_EQ(dead.body, original.body);
  ASSERT_GE(dead.headers.size(), original.headers.size());
  EXPECT_EQ(Headers(dead.headers.begin(), dead.headers.begin() + original.headers.size()),
            original.headers)
      << "the original headers come first, unchanged";
  EXPECT_EQ(dead.header(kHeaderDeadLetterReason).value_or("<none>"), reason);
  EXPECT_EQ(dead.header(kHeaderDeadLetterGroup).value_or("<none>"), group);
  EXPECT_EQ(dead.header(kHeaderDeadLetterTopic).value_or("<none>"), original.topic);
}

TEST_P(EventBusContract, DeliversKeyHeadersAndBodyExactly) {
  Collector got;
  bus_->subscribe({topic_, unique_name("g"), got.handler()});
  Running running(*bus_);
  ASSERT_TRUE(running.ok()) << running.error();

  std::vector<Message> sent;
  for (int i = 0; i < 3; ++i) {
    sent.push_back(test_message(topic_, kImageUploaded, new_image_id().value, std::to_string(i)));
  }
  // Not even well-formed for the services: no headers at all, bytes that are not UTF-8 (and a
  // NUL) in key, body and header values, an empty key and body. The bus delivers them as they are.
  Message raw;
  raw.topic = topic_;
  raw.key = std::string("k\x01\xff\x00z", 5);
  raw.body = std::string("\xff\xfe not json \x00 at all", 20);
  sent.push_back(raw);
  Message odd = raw;
  odd.key = "";
  odd.body = "";
  odd.headers = {{"x-bin", std::string("\x00\xff\x80", 3)}, {"x-bin", ""}, {"message_type", ""}};
  sent.push_back(odd);
  for (const Message& m : sent) publish(m);

  ASSERT_TRUE(got.wait_for(sent.size())) << "got " << got.messages().size();
  std::vector<Message> received = got.messages();
  ASSERT_EQ(received.size(), sent.size());
  for (const Message& expected : sent) {
    SCOPED_TRACE("message with body '" + expected.body + "'");
    auto it = std::find_if(received.begin(), received.end(), [&](const Message& m) {
      return m.body == expected.body && m.key == expected.key;
    });
    ASSERT_NE(it, received.end());
    expect_same_message(*it, expected);
  }
}

TEST_P(EventBusContract, EveryGroupGetsEveryMessageOfItsTopicsOnly) {
  Collector a;
  Collector b;
  Collector other;
  const std::string other_topic = unique_name("contract-other");
  bus_->subscribe({topic_, unique_name("a"), a.handler()});
  bus_->subscribe({topic_, unique_name("b"), b.handler()});
  bus_->subscribe({other_topic, unique_name("c"), other.handler()});
  Running running(*bus_);
  ASSERT_TRUE(running.ok()) << running.error();

  for (int i = 0; i < 5; ++i) publish(message("k" + std::to_string(i), "m" + std::to_string(i)));
  Message elsewhere = message("k", "elsewhere");
  elsewhere.topic = other_topic;
  publish(elsewhere);

  ASSERT_TRUE(a.wait_for(5));
  ASSERT_TRUE(b.wait_for(5));
  ASSERT_TRUE(other.wait_for(1));
  for (Collector* group : {&a, &b}) {
    std::vector<std::string> bodies = group->bodies();
    std::sort(bodies.begin(), bodies.end());
    EXPECT_EQ(bodies, (std::vector<std::string>{"m0", "m1", "m2", "m3", "m4"}));
  }
  EXPECT_EQ(other.bodies(), std::vector<std::string>{"elsewhere"});
}

TEST_P(EventBusContract, KeepsTheOrderOfEachKey) {
  Collector got;
  bus_->subscribe({topic_, unique_name("g"), got.handler()});
  Running running(*bus_);
  ASSERT_TRUE(running.ok()) << running.error();
  const std::vector<std::string> keys = {new_image_id().value, new_image_id().value,
                                         new_image_id().value};
  constexpr int kPerKey = 15;
  for (int i = 0; i < kPerKey; ++i) {
    for (size_t k = 0; k < keys.size(); ++k) {
      publish(message(keys[k], std::to_string(k) + ":" + std::to_string(i)));
    }
  }
  ASSERT_TRUE(got.wait_for(kPerKey * keys.size()));
  std::map<std::string, std::vector<std::string>> per_key;
  for (const Message& m : got.messages()) per_key[m.key].push_back(m.body);
  for (size_t k = 0; k < keys.size(); ++k) {
    std::vector<std::string> expected;
    for (int i = 0; i < kPerKey; ++i)
      expected.push_back(std::to_string(k) + ":" + std::to_string(i));
    EXPECT_EQ(per_key[keys[k]], expected) << "key " << k;
  }
}

TEST_P(EventBusContract, ConcurrentPublishersAreAllDelivered) {
  Collector got;
  bus_->subscribe({topic_, unique_name("g"), got.handler()});
  Running running(*bus_);
  ASSERT_TRUE(running.ok()) << running.error();
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        publish(message("key-" + std::to_string(t), std::to_string(t) + ":" + std::to_string(i)));
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(got.wait_for(kThreads * kEach));
  std::map<std::string, std::vector<std::string>> per_key;
  for (const Message& m : got.messages()) per_key[m.key].push_back(m.body);
  for (int t = 0; t < kThreads; ++t) {
    std::vector<std::string> expected;
    for (int i = 0; i < kEach; ++i) expected.push_back(std::to_string(t) + ":" + std::to_string(i));
    EXPECT_EQ(per_key["key-" + std::to_string(t)], expected) << "publisher " << t;
  }
}

TEST_P(EventBusContract, RetriesThenDeadLettersWithTheReasonAndMovesOn) {
  const std::string group = unique_name("flaky");
  std::atomic<int> poison_calls{0};
  Collector flaky([&](const Message& m) -> Status {
    if (m.body != "poison") return {};
    ++poison_calls;
    return fail(ErrorKind::kInternal, "boom");
  });
  Collector other;
  Collector dlq;
  bus_->subscribe({topic_, group, flaky.handler(), 3});
  bus_->subscribe({topic_, unique_name("other"), other.handler()});
  bus_->subscribe({Topics::dead_letter(topic_), unique_name("dlq"), dlq.handler()});
  Running running(*bus_);
  ASSERT_TRUE(running.ok()) << running.error();

  const Message poison = message("same-key", "poison");
  publish(poison);
  publish(message("same-key", "fine"));
  ASSERT_TRUE(flaky.wait_for_body("fine")) << "the group moves on after the dead letter";
  ASSERT_TRUE(dlq.wait_for(1));
  EXPECT_EQ(poison_calls.load(), 3);
  EXPECT_EQ(flaky.bodies(), (std::vector<std::string>{"poison", "poison", "poison", "fine"}));
  ASSERT_TRUE(other.wait_for(2));
  EXPECT_EQ(other.bodies(), (std::vector<std::string>{"poison", "fine"}))
      << "other groups are not affected";
  std::vector<Message> dead = dlq.messages();
  ASSERT_EQ(dead.size(), 1u);
  expect_dead_letter(dead[0], poison, "boom", group);
}

TEST_P(EventBusContract, PermanentErrorsAreDeadLetteredAtOnce) {
  const std::string group = unique_name("strict");
  Collector strict([&](const Message& m) -> Status {
    if (m.body == "invalid") return fail(ErrorKind::kInvalidArgument, "not a valid body");
    if (m.body == "unsupported") return fail(ErrorKind::kUnsupported, "unknown version");
    return {};
  });
  Collector dlq;
  bus_->subscribe({topic_, group, strict.handler(), 5});
  bus_->subscribe({Topics::dead_letter(topic_), unique_name("dlq"), dlq.handler()});
  Running running(*bus_);
  ASSERT_TRUE(running.ok()) << running.error();

  const Message invalid = message("k", "invalid");
  const Message unsupported = message("k", "unsupported");
  publish(invalid);
  publish(unsupported);
  publish(message("k", "fine"));
  ASSERT_TRUE(strict.wait_for_body("fine"));
  ASSERT_TRUE(dlq.wait_for(2));
  EXPECT_EQ(strict.bodies(), (std::vector<std::string>{"invalid", "unsupported", "fine"}))
      << "each called once";
  std::vector<Message> dead = dlq.messages();
  ASSERT_EQ(dead.size(), 2u);
  expect_dead_letter(dead[0], invalid, "not a valid body", group);
  expect_dead_letter(dead[1], unsupported, "unknown version", group);
}

TEST_P(EventBusContract, UnavailableIsRetriedUntilItSucceedsAndNeverDeadLettered) {
  std::atomic<int> failures_left{4};
  Collector patient([&](const Message&) -> Status {
    if (failures_left-- > 0) return fail(ErrorKind::kUnavailable, "database is down");
    return {};
  });
  Collector dlq;
  bus_->subscribe({topic_, unique_name("patient"), patient.handler(), 2});
  bus_->subscribe({Topics::dead_letter(topic_), unique_name("dlq"), dlq.handler()});
  Running running(*bus_);
  ASSERT_TRUE(running.ok()) << running.error();

  publish(message("k", "wanted"));
  ASSERT_TRUE(patient.wait_for(5));
  EXPECT_EQ(patient.count("wanted"), 5u)
      << "more calls than max_attempts: unavailable does not count";

  // A marker sent straight to the dead-letter topic: if the message had been dead-lettered, it
  // would have arrived before the marker.
  Message marker = message("k", "marker");
  marker.topic = Topics::dead_letter(topic_);
  publish(marker);
  ASSERT_TRUE(dlq.wait_for(1));
  EXPECT_EQ(dlq.bodies(), std::vector<std::string>{"marker"});
}

TEST_P(EventBusContract, AThrowingHandlerIsRetriedThenDeadLettered) {
  const std::string group = unique_name("thrower");
  std::atomic<int> calls{0};
  bus_->subscribe({topic_, group,
                   [&](const Message&) -> Status {
                     ++calls;
                     throw std::runtime_error("kaboom");
                   },
                   2});
  Collector dlq;
  bus_->subscribe({Topics::dead_letter(topic_), unique_name("dlq"), dlq.handler()});
  Running running(*bus_);
  ASSERT_TRUE(running.ok()) << running.error();
  publish(message("k", "explosive"));
  ASSERT_TRUE(dlq.wait_for(1));
  EXPECT_EQ(calls.load(), 2);
  const Message dead = dlq.messages().at(0);
  EXPECT_NE(dead.header(kHeaderDeadLetterReason).value_or("").find("kaboom"), std::string::npos)
      << dead.header(kHeaderDeadLetterReason).value_or("<none>");
  EXPECT_EQ(dead.header(kHeaderDeadLetterGroup).value_or(""), group);
}

TEST_P(EventBusContract, MessagesPublishedBeforeStartAreDeliveredAfterIt) {
  Collector got;
  bus_->subscribe({topic_, unique_name("g"), got.handler()});
  const Message early = message("k", "early");
  // Kafka keeps it at once; the in-process bus refuses it until start() and the caller (an outbox
  // relay) publishes it again.
  Status before = bus_->publish(early);
  if (!before) {
    EXPECT_EQ(before.error().kind, ErrorKind::kUnavailable) << before.error().message;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  EXPECT_TRUE(got.messages().empty()) << "nothing is delivered before start()";

  Running running(*bus_);
  ASSERT_TRUE(running.ok()) << running.error();
  if (!before) publish(early);
  publish(message("k", "late"));
  ASSERT_TRUE(got.wait_for(2));
  EXPECT_EQ(got.bodies(), (std::vector<std::string>{"early", "late"}));
}

TEST_P(EventBusContract, StopWaitsForTheRunningHandler) {
  std::atomic<bool> entered{false};
  std::atomic<bool> finished{false};
  bus_->subscribe({topic_, unique_name("slow"), [&](const Message&) -> Status {
                     entered = true;
                     std::this_thread::sleep_for(std::chrono::milliseconds{500});
                     finished = true;
                     return {};
                   }});
  Running running(*bus_);
  ASSERT_TRUE(running.ok()) << running.error();
  // The in-process bus runs the handler inside publish(): publish from another thread.
  std::thread publisher([&] { publish(message("k", "slow")); });
  const auto deadline = std::chrono::steady_clock::now() + kDeliveryDeadline;
  while (!entered && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  const bool ran = entered;
  bus_->stop();
  const bool done = finished;
  publisher.join();
  ASSERT_TRUE(ran) << "the handler never ran";
  EXPECT_TRUE(done) << "stop() returned while the handler was running";
  const Status after = bus_->publish(message("k", "after"));
  ASSERT_FALSE(after.ok()) << "publish after stop()";
  EXPECT_EQ(after.error().kind, ErrorKind::kUnavailable);
}

TEST_P(EventBusContract, ASecondBusResumesTheGroupWhereTheFirstLeftIt) {
  const std::string group = unique_name("resume");
  std::atomic<bool> stuck_entered{false};
  Collector first([&](const Message& m) -> Status {
    if (m.body != "stuck") return {};
    stuck_entered = true;
    return fail(ErrorKind::kUnavailable, "not now");
  });
  bus_->subscribe({topic_, group, first.handler()});
  Running running(*bus_);
  ASSERT_TRUE(running.ok()) << running.error();
  publish(message("k", "done"));
  ASSERT_TRUE(first.wait_for_body("done"));
  // Handled OK, so committed. "stuck" is retried until stop(), so it is not.
  Status stuck_published;
  std::thread publisher([&] { stuck_published = bus_->publish(message("k", "stuck")); });
  const auto deadline = std::chrono::steady_clock::now() + kDeliveryDeadline;
  while (!stuck_entered && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  const bool entered = stuck_entered;
  bus_->stop();
  publisher.join();
  ASSERT_TRUE(entered) << "the handler never saw the stuck message";
  if (!stuck_published) {
    EXPECT_EQ(stuck_published.error().kind, ErrorKind::kUnavailable);
  }

  Collector resumed;
  std::unique_ptr<EventBus> second = make_bus();
  ASSERT_NE(second, nullptr);
  second->subscribe({topic_, group, resumed.handler()});
  Running second_running(*second);
  ASSERT_TRUE(second_running.ok()) << second_running.error();
  // A publisher told "not delivered" publishes again, as an outbox relay would.
  if (!stuck_published) expect_ok(second->publish(message("k", "stuck")));
  expect_ok(second->publish(message("k", "next")));
  ASSERT_TRUE(resumed.wait_for_body("next"));
  EXPECT_EQ(resumed.bodies(), (std::vector<std::string>{"stuck", "next"}))
      << "the unfinished message again, the finished one not";
}

}  // namespace dither::contract
