#include "http/router.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "http/errors.h"
#include "http/url_decode.h"

namespace dither::http {
namespace {

SyncHandler named(const std::string& name) {
  return [name](const RequestContext&) { return json_response(200, name); };
}

// Which handler matched, by calling it.
std::string run(const Router::Match& match) {
  if (match.handler == nullptr) return "<none>";
  const Request request;
  const RequestContext context{request, "/", {}, {}, ""};
  return std::get<SyncHandler>(*match.handler)(context).body;
}

using Params = std::vector<std::pair<std::string, std::string>>;

TEST(Router, LiteralsAndPlaceholders) {
  Router router;
  router.add(Verb::get, "/health", named("health"));
  router.add(Verb::get, "/images/{uuid}", named("image"));
  router.add(Verb::post, "/images/{uuid}/{channels}", named("dither"), Dispatch::kBlocking);
  router.add(Verb::get, "/", named("root"));

  EXPECT_EQ(run(router.match(Verb::get, "/health")), "health");
  EXPECT_EQ(run(router.match(Verb::get, "/")), "root");

  const Router::Match image = router.match(Verb::get, "/images/abc-123");
  EXPECT_EQ(run(image), "image");
  EXPECT_EQ(image.params, (Params{{"uuid", "abc-123"}}));
  EXPECT_EQ(image.dispatch, Dispatch::kInline);

  const Router::Match dither = router.match(Verb::post, "/images/u/16");
  EXPECT_EQ(run(dither), "dither");
  EXPECT_EQ(dither.params, (Params{{"uuid", "u"}, {"channels", "16"}}));
  EXPECT_EQ(dither.dispatch, Dispatch::kBlocking);
}

TEST(Router, NoMatch) {
  Router router;
  router.add(Verb::get, "/images/{uuid}", named("image"));
  for (const char* path : {"/images", "/images/", "/images/a/b", "/image/a", "images/a", "",
                           "/images//", "/IMAGES/a"}) {
    const Router::Match m = router.match(Verb::get, path);
    EXPECT_EQ(m.handler, nullptr) << path;
    EXPECT_FALSE(m.path_known) << path;
  }
}

TEST(Router, PercentDecodingPerSegment) {
  Router router;
  router.add(Verb::get, "/files/{name}", named("file"));
  router.add(Verb::get, "/a b/{x}", named("space"));

  Router::Match m = router.match(Verb::get, "/files/a%20b%2Fc+d");
  EXPECT_EQ(run(m), "file");
  EXPECT_EQ(m.params, (Params{{"name", "a b/c+d"}}));  // '+' is literal in a path

  EXPECT_EQ(run(router.match(Verb::get, "/a%20b/1")), "space");
  EXPECT_EQ(run(router.match(Verb::get, "/%61%20b/1")), "space");  // literals compare decoded
  // Malformed escapes match nothing.
  EXPECT_EQ(router.match(Verb::get, "/files/%zz").handler, nullptr);
  EXPECT_EQ(router.match(Verb::get, "/files/%2").handler, nullptr);
  EXPECT_EQ(router.match(Verb::get, "/files/%").handler, nullptr);
}

TEST(Router, RestPlaceholder) {
  Router router;
  router.add(Verb::get, "/files/{key...}", named("files"));
  Router::Match m = router.match(Verb::get, "/files/a/b%2Fc/d.png");
  EXPECT_EQ(run(m), "files");
  EXPECT_EQ(m.params, (Params{{"key", "a/b/c/d.png"}}));
  m = router.match(Verb::get, "/files/x");
  EXPECT_EQ(m.params, (Params{{"key", "x"}}));
  m = router.match(Verb::get, "/files/x/");
  EXPECT_EQ(m.params, (Params{{"key", "x/"}}));
  EXPECT_EQ(router.match(Verb::get, "/files/").handler, nullptr);
  EXPECT_EQ(router.match(Verb::get, "/files").handler, nullptr);
  EXPECT_EQ(router.match(Verb::get, "/files//").handler, nullptr);
}

TEST(Router, FirstMatchWins) {
  Router router;
  router.add(Verb::get, "/images/latest", named("latest"));
  router.add(Verb::get, "/images/{uuid}", named("image"));
  EXPECT_EQ(run(router.match(Verb::get, "/images/latest")), "latest");
  EXPECT_EQ(run(router.match(Verb::get, "/images/other")), "image");
}

TEST(Router, HeadIsAnsweredByGet) {
  Router router;
  router.add(Verb::get, "/x", named("get"));
  EXPECT_EQ(run(router.match(Verb::head, "/x")), "get");
  Router explicit_head;
  explicit_head.add(Verb::head, "/x", named("head"));
  explicit_head.add(Verb::get, "/x", named("get"));
  EXPECT_EQ(run(explicit_head.match(Verb::head, "/x")), "head");
  EXPECT_EQ(run(explicit_head.match(Verb::get, "/x")), "get");
}

TEST(Router, MethodNotAllowed) {
  Router router;
  router.add(Verb::get, "/images/{uuid}", named("get"));
  router.add(Verb::delete_, "/images/{uuid}", named("delete"));
  router.add(Verb::post, "/images", named("post"));
  const Router::Match m = router.match(Verb::put, "/images/u");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.allow, "GET, HEAD, DELETE");
  const Router::Match unknown = router.match(Verb::unknown, "/images");
  EXPECT_TRUE(unknown.path_known);
  EXPECT_EQ(unknown.allow, "POST");
  EXPECT_FALSE(router.match(Verb::put, "/nothing").path_known);
}

TEST(Router, AsyncHandlers) {
  Router router;
  router.add_async(Verb::get, "/a", [](const RequestContext&) -> boost::asio::awaitable<Response> {
    co_return json_response(200, "{}");
  });
  const Router::Match m = router.match(Verb::get, "/a");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_TRUE(std::holds_alternative<AsyncHandler>(*m.handler));
}

TEST(Router, BadPatternsThrow) {
  Router router;
  for (const char* pattern :
       {"", "images", "/a/{", "/a/}", "/a/{}", "/a/{x...}/b", "/a/x{y}", "/a/{...}", "/a/{x{y}}"}) {
    EXPECT_THROW(router.add(Verb::get, pattern, named("x")), std::invalid_argument) << pattern;
  }
}

TEST(RequestContext, Accessors) {
  Request request;
  request.set("X-Thing", "value");
  const RequestContext context{
      request, "/p", {{"uuid", "u1"}}, {{"a", "1"}, {"empty", ""}, {"a", "2"}}, "id"};
  EXPECT_EQ(context.param("uuid"), "u1");
  EXPECT_EQ(context.param("nope"), "");
  EXPECT_EQ(context.query_value("a"), "1");  // the first one
  EXPECT_EQ(context.query_value("empty"), "");
  EXPECT_FALSE(context.query_value("nope").has_value());
  EXPECT_EQ(context.header("x-thing"), "value");
  EXPECT_EQ(context.header("X-Other"), "");
}

TEST(UrlDecode, PercentDecode) {
  EXPECT_EQ(*percent_decode("a%20b%2fc"), "a b/c");
  EXPECT_EQ(*percent_decode("a+b"), "a+b");
  EXPECT_EQ(*percent_decode("a+b", true), "a b");
  EXPECT_EQ(*percent_decode("%00%FF"), std::string("\0\xff", 2));
  EXPECT_EQ(*percent_decode(""), "");
  for (const char* bad : {"%", "%a", "%g0", "a%0", "%%"}) {
    const Result<std::string> r = percent_decode(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  }
}

TEST(UrlDecode, Query) {
  Result<QueryPairs> q = parse_query("q=red+dot&n=2&flag&&empty=&x=a%3Db%26c&q=again");
  ASSERT_TRUE(q);
  EXPECT_EQ(*q, (QueryPairs{{"q", "red dot"},
                            {"n", "2"},
                            {"flag", ""},
                            {"empty", ""},
                            {"x", "a=b&c"},
                            {"q", "again"}}));
  EXPECT_TRUE(parse_query("")->empty());
  EXPECT_EQ(*parse_query("a=b=c"), (QueryPairs{{"a", "b=c"}}));
  EXPECT_FALSE(parse_query("a=%zz"));
  EXPECT_FALSE(parse_query("%=1"));
}

TEST(Errors, StatusByKind) {
  EXPECT_EQ(http_status(ErrorKind::kInvalidArgument), 400u);
  EXPECT_EQ(http_status(ErrorKind::kNotFound), 404u);
  EXPECT_EQ(http_status(ErrorKind::kTooLarge), 413u);
  EXPECT_EQ(http_status(ErrorKind::kUnsupported), 415u);
  EXPECT_EQ(http_status(ErrorKind::kUndecodable), 422u);
  EXPECT_EQ(http_status(ErrorKind::kTooManyPixels), 422u);
  EXPECT_EQ(http_status(ErrorKind::kUnavailable), 503u);
  EXPECT_EQ(http_status(ErrorKind::kInternal), 500u);
}

TEST(Errors, JsonBodies) {
  Response r = error_response(make_error(ErrorKind::kNotFound, "no image \"x\"\n"));
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"no image \"x\"\n"}})");

  r = error_response(make_error(ErrorKind::kInvalidArgument, "bad"), "invalid_uuid");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body, R"({"error":{"code":"invalid_uuid","message":"bad"}})");

  r = error_response(503, "overloaded", std::string("a\x01\\b", 4));
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.body, R"({"error":{"code":"overloaded","message":"a\u0001\\b"}})");

  r = json_response(201, R"({"ok":true})");
  EXPECT_EQ(r.status, 201u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"ok":true})");
  EXPECT_TRUE(r.file_path.empty());
}

}  // namespace
}  // namespace dither::http
