#include "gateway/gateway.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/errors.h"

namespace dither {
namespace {

using boost::asio::awaitable;

// An instance that cannot be reached, with the upstream client's wording for a request that
// never left ("cannot connect") or one that was sent and then lost.
class Unreachable final : public Upstream {
 public:
  explicit Unreachable(bool sent) : sent_(sent) {}
  awaitable<Result<http::Response>> send(http::Request& request) override {
    bodies.push_back(request.body());
    co_return make_error(ErrorKind::kUnavailable,
                         sent_ ? "upstream x: connection reset" : "upstream x: cannot connect");
  }
  std::vector<std::string> bodies;

 private:
  bool sent_;
};

std::optional<Result<http::Response>> run(Upstream& upstream, http::Request& request) {
  boost::asio::io_context io;
  std::optional<Result<http::Response>> out;
  boost::asio::co_spawn(
      io, [&]() -> awaitable<void> { out.emplace(co_await upstream.send(request)); },
      boost::asio::detached);
  io.run();
  return out;
}

http::Router echo_router(std::vector<std::string>& seen) {
  http::Router router;
  router.add(http::Verb::post, "/echo", [&seen](const http::RequestContext& c) {
    seen.push_back(c.request.body());
    return http::json_response(200, std::to_string(c.request.body().size()));
  });
  router.add(http::Verb::get, "/echo", [&seen](const http::RequestContext&) {
    seen.emplace_back("get");
    return http::json_response(200, "got");
  });
  return router;
}

// The same request (body included) goes to the next instance when the first was never reached:
// one request object for every attempt, no copy per attempt.
TEST(FailoverUpstream, SendsTheSameRequestToTheNextInstance) {
  http::BlockingPool pool(1, -1);
  std::vector<std::string> seen;
  auto down = std::make_shared<Unreachable>(false);
  auto failover = failover_upstream({down, local_upstream(echo_router(seen), pool, 1 << 20)});
  // Round-robin starts at the first instance on the first call.
  http::Request post{http::Verb::post, "/echo", 11};
  post.body() = std::string(5000, 'p');
  std::optional<Result<http::Response>> r = run(*failover, post);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->body, "5000");
  ASSERT_EQ(down->bodies.size(), 1u);
  EXPECT_EQ(down->bodies[0].size(), 5000u);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], std::string(5000, 'p'));
  EXPECT_EQ(post.body().size(), 5000u);  // still the caller's, sendable again
}

// A POST that may have reached a service is not sent twice; a GET is.
TEST(FailoverUpstream, RetriesOnlyWhatIsSafeToRepeat) {
  http::BlockingPool pool(1, -1);
  std::vector<std::string> seen;
  auto lost = std::make_shared<Unreachable>(true);
  auto failover = failover_upstream({lost, local_upstream(echo_router(seen), pool, 1 << 20)});
  http::Request post{http::Verb::post, "/echo", 11};
  post.body() = "once";
  std::optional<Result<http::Response>> r = run(*failover, post);
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().kind, ErrorKind::kUnavailable);
  EXPECT_TRUE(seen.empty());
  // The next call starts at the other instance; the one after at `lost` again, then goes on.
  http::Request get1{http::Verb::get, "/echo", 11};
  ASSERT_TRUE(run(*failover, get1).value());
  http::Request get2{http::Verb::get, "/echo", 11};
  ASSERT_TRUE(run(*failover, get2).value());
  EXPECT_EQ(seen, (std::vector<std::string>{"get", "get"}));
  EXPECT_EQ(lost->bodies.size(), 2u);
}

TEST(LocalUpstream, RefusesBodiesOverItsLimit) {
  http::BlockingPool pool(1, -1);
  std::vector<std::string> seen;
  auto local = local_upstream(echo_router(seen), pool, 10);
  http::Request post{http::Verb::post, "/echo", 11};
  post.body() = std::string(11, 'x');
  std::optional<Result<http::Response>> r = run(*local, post);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->status, 413u);
  EXPECT_TRUE(seen.empty());
}

}  // namespace
}  // namespace dither
