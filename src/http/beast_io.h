// Internal to src/http: the names the server and the upstream client use for Asio and Beast, and
// the completion token both read and write with (errors as values, never exceptions).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/fields.hpp>

namespace dither::http::io {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// co_await op(..., kNoThrow) gives (error_code, result...) instead of throwing.
inline constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

}  // namespace dither::http::io
