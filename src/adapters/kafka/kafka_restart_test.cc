// The broker stops and starts again while publishers keep publishing: each publish either
// succeeds or says kUnavailable within a bounded time, and every acknowledged message is there
// afterwards. Uses scripts/infra/kafka.sh on the broker ctest started (or the one named by
// DITHER_INFRA_RUN), so ctest runs it alone (RUN_SERIAL).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "adapters/kafka/kafka_bus.h"
#include "ports/testing/event_bus_contract.h"

namespace dither {
namespace contract {
// Only its helpers are used here; the suite itself runs in kafka_bus_test.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(EventBusContract);
}  // namespace contract
namespace {

using contract::Collector;
using contract::unique_name;

#define DITHER_STRINGIFY2(x) #x
#define DITHER_STRINGIFY(x) DITHER_STRINGIFY2(x)
const std::string kPort = DITHER_STRINGIFY(DITHER_TEST_KAFKA_PORT);

constexpr std::chrono::milliseconds kMessageTimeout{3000};

std::string infra_run() {
  const char* dir = std::getenv("DITHER_INFRA_RUN");
  return dir != nullptr && *dir != '\0' ? dir : DITHER_TEST_INFRA_RUN;
}

// Runs `kafka.sh <command>` on the test broker; true when it succeeded.
bool broker(const std::string& command) {
  const std::string line = "DITHER_INFRA_RUN='" + infra_run() + "' KAFKA_PORT=" + kPort + " '" +
                           DITHER_KAFKA_SCRIPT + "' " + command;
  return std::system(line.c_str()) == 0;
}

struct Outcome {
  std::string body;
  Status status;
  std::chrono::steady_clock::duration took;
  std::chrono::steady_clock::time_point finished;
};

TEST(KafkaBrokerRestart, PublishSucceedsOrIsUnavailableAndNothingAcknowledgedIsLost) {
  Collector got;  // before the bus: it stops before this goes away
  KafkaOptions options;
  options.bootstrap_servers = "127.0.0.1:" + kPort;
  options.client_id = "kafka-restart-test";
  options.message_timeout = kMessageTimeout;
  auto opened = KafkaBus::open(options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  std::unique_ptr<KafkaBus> bus = std::move(*opened);
  ASSERT_TRUE(bus->ping(std::chrono::seconds{5}).ok())
      << "no Kafka broker on port " << kPort
      << ": ctest starts it; by hand: DITHER_INFRA_RUN=" << infra_run() << " KAFKA_PORT=" << kPort
      << " scripts/infra/kafka.sh start";
  const std::string topic = unique_name("restart");
  ASSERT_TRUE(bus->create_topics({topic}, 2, 1).ok());

  std::mutex mutex;
  std::vector<Outcome> outcomes;
  std::atomic<bool> stop_publishing{false};
  std::vector<std::thread> publishers;
  for (int t = 0; t < 3; ++t) {
    publishers.emplace_back([&, t] {
      for (int i = 0; !stop_publishing; ++i) {
        Message m = make_message(topic, kImageUploaded, "key-" + std::to_string(t), "");
        m.body = std::to_string(t) + ":" + std::to_string(i);
        const auto started = std::chrono::steady_clock::now();
        Status status = bus->publish(m);
        const auto finished = std::chrono::steady_clock::now();
        {
          std::lock_guard lock(mutex);
          outcomes.push_back({m.body, status, finished - started, finished});
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{20});
      }
    });
  }
  // Whatever fails below, the publishers stop and the broker runs again.
  struct Cleanup {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~Cleanup() {
      stop = true;
      for (auto& th : threads) {
        if (th.joinable()) th.join();
      }
      broker("start");
    }
  } cleanup{stop_publishing, publishers};
  auto acknowledged_since = [&](std::chrono::steady_clock::time_point since) {
    std::lock_guard lock(mutex);
    return std::count_if(outcomes.begin(), outcomes.end(),
                         [&](const Outcome& o) { return o.status.ok() && o.finished > since; });
  };

  std::this_thread::sleep_for(std::chrono::milliseconds{1500});
  ASSERT_TRUE(broker("stop"));
  // Longer than the message timeout: publishes made meanwhile fail.
  std::this_thread::sleep_for(kMessageTimeout + std::chrono::seconds{2});
  ASSERT_TRUE(broker("start"));
  const auto restarted = std::chrono::steady_clock::now();
  const auto deadline = restarted + std::chrono::seconds{60};
  while (acknowledged_since(restarted) < 30 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  stop_publishing = true;
  for (auto& p : publishers) p.join();

  std::set<std::string> acknowledged;
  int unavailable = 0;
  std::chrono::steady_clock::duration longest{0};
  for (const Outcome& o : outcomes) {
    longest = std::max(longest, o.took);
    if (o.status.ok()) {
      acknowledged.insert(o.body);
    } else {
      ++unavailable;
      EXPECT_EQ(o.status.error().kind, ErrorKind::kUnavailable) << o.status.error().message;
    }
    EXPECT_LE(o.took, kMessageTimeout + std::chrono::seconds{3})
        << o.body << " took too long: " << (o.status.ok() ? "ok" : o.status.error().message);
  }
  EXPECT_GT(unavailable, 0) << "the broker was down longer than the message timeout";
  EXPECT_GE(acknowledged_since(restarted), 30) << "publishing works again after the restart";

  // Every acknowledged message is in the topic.
  bus->subscribe({topic, unique_name("check"), got.handler()});
  ASSERT_TRUE(bus->start().ok());
  const auto read_deadline = std::chrono::steady_clock::now() + std::chrono::seconds{90};
  std::set<std::string> missing = acknowledged;
  while (!missing.empty() && std::chrono::steady_clock::now() < read_deadline) {
    for (const std::string& body : got.bodies()) missing.erase(body);
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  EXPECT_TRUE(missing.empty()) << missing.size() << " of " << acknowledged.size()
                               << " acknowledged messages are missing, e.g. " << *missing.begin();
  std::cout << acknowledged.size() << " acknowledged, " << unavailable
            << " unavailable, longest publish "
            << std::chrono::duration_cast<std::chrono::milliseconds>(longest).count() << " ms\n";
  bus->stop();
}

}  // namespace
}  // namespace dither
