// The EventBus contract instantiated for the in-process bus, plus what only it does: synchronous
// delivery inside publish(), refusal while not running, the bound on transient retries.
#include "adapters/inproc/in_process_bus.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "ports/testing/event_bus_contract.h"

namespace dither {
namespace {

using contract::EventBusContract;

INSTANTIATE_TEST_SUITE_P(InProcess, EventBusContract,
                         ::testing::Values(contract::EventBusFactory{
                             "inproc", [] { return std::make_unique<InProcessBus>(); }}),
                         contract::FactoryName());

Message msg(std::string topic, std::string key, std::string body) {
  return make_message(std::move(topic), kImageUploaded, std::move(key), std::move(body));
}

TEST(InProcessBus, EveryGroupGetsEveryMessageInOrderWithHeadersIntact) {
  InProcessBus bus;
  std::vector<Message> a, b;
  bus.subscribe({"images", "a", [&](const Message& m) {
                   a.push_back(m);
                   return Status{};
                 }});
  bus.subscribe({"images", "b", [&](const Message& m) {
                   b.push_back(m);
                   return Status{};
                 }});
  bus.subscribe({"dithers", "c", [&](const Message&) -> Status {
                   ADD_FAILURE() << "other topic";
                   return {};
                 }});
  ASSERT_TRUE(bus.start().ok());
  std::vector<Message> sent;
  for (int i = 0; i < 5; ++i) {
    sent.push_back(msg("images", "k" + std::to_string(i), "{\"i\":" + std::to_string(i) + "}"));
    ASSERT_TRUE(bus.publish(sent.back()).ok());
  }
  ASSERT_EQ(a.size(), 5u);
  ASSERT_EQ(b.size(), 5u);
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(a[i].key, sent[i].key);
    EXPECT_EQ(a[i].body, sent[i].body);
    EXPECT_EQ(a[i].headers, sent[i].headers);
    EXPECT_EQ(b[i].message_id(), sent[i].message_id());
  }
  bus.stop();
}

TEST(InProcessBus, NotRunningIsUnavailable) {
  InProcessBus bus;
  EXPECT_EQ(bus.publish(msg("images", "k", "{}")).error().kind, ErrorKind::kUnavailable);
  ASSERT_TRUE(bus.start().ok());
  EXPECT_TRUE(bus.publish(msg("images", "k", "{}")).ok());
  bus.stop();
  EXPECT_EQ(bus.publish(msg("images", "k", "{}")).error().kind, ErrorKind::kUnavailable);
}

TEST(InProcessBus, RetriesThenDeadLettersWithReasonAndMovesOn) {
  std::vector<Message> dead_seen;
  InProcessBus bus([&](const Message& m) { dead_seen.push_back(m); });
  int calls = 0;
  int good_calls = 0;
  bus.subscribe({"images", "flaky",
                 [&](const Message& m) -> Status {
                   ++calls;
                   if (m.body == "poison") return make_error(ErrorKind::kInternal, "bad body");
                   return {};
                 },
                 3});
  bus.subscribe({"images", "other", [&](const Message&) {
                   ++good_calls;
                   return Status{};
                 }});
  std::vector<Message> dlq;
  bus.subscribe({"images.dlq", "dlq-reader", [&](const Message& m) {
                   dlq.push_back(m);
                   return Status{};
                 }});
  ASSERT_TRUE(bus.start().ok());
  ASSERT_TRUE(bus.publish(msg("images", "k", "poison")).ok());
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(good_calls, 1) << "other groups still get the message";
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].topic, "images.dlq");
  EXPECT_EQ(dlq[0].header("dead_letter_reason").value_or(""), "bad body");
  EXPECT_EQ(dlq[0].header("dead_letter_group").value_or(""), "flaky");
  EXPECT_EQ(dlq[0].header("dead_letter_topic").value_or(""), "images");
  EXPECT_EQ(dead_seen.size(), 1u);
  ASSERT_TRUE(bus.publish(msg("images", "k", "fine")).ok());
  EXPECT_EQ(calls, 4);
  bus.stop();
}

TEST(InProcessBus, HandlerExceptionIsAnError) {
  InProcessBus bus;
  std::atomic<int> dead{0};
  bus.subscribe({"t", "g", [](const Message&) -> Status { throw std::runtime_error("boom"); }, 2});
  bus.subscribe({"t.dlq", "d", [&](const Message& m) {
                   EXPECT_NE(m.header("dead_letter_reason").value_or("").find("boom"),
                             std::string_view::npos);
                   ++dead;
                   return Status{};
                 }});
  ASSERT_TRUE(bus.start().ok());
  EXPECT_TRUE(bus.publish(msg("t", "k", "{}")).ok());
  EXPECT_EQ(dead.load(), 1);
  bus.stop();
}

TEST(InProcessBus, ConcurrentPublishersKeepPerTopicDeliveriesSerial) {
  InProcessBus bus;
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::atomic<int> delivered{0};
  bus.subscribe({"t", "g", [&](const Message&) {
                   const int now = ++inside;
                   int seen = max_inside.load();
                   while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
                   }
                   std::this_thread::yield();
                   --inside;
                   ++delivered;
                   return Status{};
                 }});
  ASSERT_TRUE(bus.start().ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) ASSERT_TRUE(bus.publish(msg("t", "k", "{}")).ok());
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(delivered.load(), 800);
  EXPECT_EQ(max_inside.load(), 1);
  bus.stop();
}

TEST(InProcessBus, ATransientFailureLongerThanTheLimitIsUnavailableToThePublisher) {
  int dead = 0;
  InProcessBus bus([&](const Message&) { ++dead; }, std::chrono::milliseconds{200});
  std::atomic<int> calls{0};
  bus.subscribe({"t", "g", [&](const Message&) -> Status {
                   ++calls;
                   return make_error(ErrorKind::kUnavailable, "disk full");
                 }});
  ASSERT_TRUE(bus.start().ok());
  const auto started = std::chrono::steady_clock::now();
  Status published = bus.publish(msg("t", "k", "{}"));
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(published.ok());
  EXPECT_EQ(published.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(published.error().message.find("disk full"), std::string::npos);
  EXPECT_GE(took, std::chrono::milliseconds{200});
  EXPECT_LT(took, std::chrono::seconds{2});
  EXPECT_GT(calls.load(), 3) << "retried meanwhile";
  EXPECT_EQ(dead, 0) << "never dead-lettered";
  bus.stop();
}

TEST(InProcessBus, StopInterruptsARetryAndThePublisherLearnsIt) {
  InProcessBus bus({}, std::chrono::minutes{10});
  std::atomic<int> calls{0};
  bus.subscribe({"t", "g",
                 [&](const Message&) -> Status {
                   ++calls;
                   return make_error(ErrorKind::kInternal, "flaky");
                 },
                 1000});
  ASSERT_TRUE(bus.start().ok());
  Status published;
  std::thread publisher([&] { published = bus.publish(msg("t", "k", "{}")); });
  while (calls.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds{1});
  const auto started = std::chrono::steady_clock::now();
  bus.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{2});
  publisher.join();
  ASSERT_FALSE(published.ok());
  EXPECT_EQ(published.error().kind, ErrorKind::kUnavailable);
}

}  // namespace
}  // namespace dither
