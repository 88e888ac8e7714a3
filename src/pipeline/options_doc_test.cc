// The hand-written documents against the option table (process_options.h): the OpenAPI document's
// options (src/gateway/openapi.json) and docs/API.md's option table must say what the table says,
// in every name, type, choice, range and default. When one fails, change the document (for
// docs/API.md, paste what `dither --list-options markdown` prints).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <set>
#include <sstream>

#include "pipeline/process_options.h"

namespace dither::pipeline {
namespace {

namespace json = boost::json;

std::string read_file(const std::string& relative) {
  std::ifstream in(std::string(DITHER_SOURCE_DIR) + "/" + relative);
  EXPECT_TRUE(in.good()) << relative;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const json::object& openapi() {
  static const json::value doc = json::parse(read_file("src/gateway/openapi.json"));
  return doc.as_object().at("components").as_object();
}

std::vector<const OptionInfo*> request_options() {
  std::vector<const OptionInfo*> out;
  for (const OptionInfo& o : option_table()) {
    if (o.scope == OptionScope::kRequest) out.push_back(&o);
  }
  return out;
}

// The value of `text` as the JSON the document would hold for an option of `type`.
json::value typed(OptionType type, const std::string& text) {
  switch (type) {
    case OptionType::kBoolean:
      return text == "true";
    case OptionType::kInteger:
      return std::stoll(text);
    case OptionType::kNumber:
      return json::parse(text);
    case OptionType::kString:
      return json::string(text);
    case OptionType::kJson:
      return json::parse(text);
  }
  return nullptr;
}

bool same_number(const json::value& v, double d) {
  return v.is_number() && v.to_number<double>() == d;
}

// The enum of a schema: its own, or the one among its anyOf (the algorithm also takes aliases).
const json::array* enum_of(const json::object& schema) {
  if (const json::value* e = schema.if_contains("enum")) return &e->as_array();
  if (const json::value* any = schema.if_contains("anyOf")) {
    for (const json::value& s : any->as_array()) {
      if (const json::value* e = s.as_object().if_contains("enum")) return &e->as_array();
    }
  }
  return nullptr;
}

// A JSON option (kernel, matrix): text in a query string; in a body the value itself (an array,
// perhaps an object) or its text, which OpenAPI 3.0 says as anyOf the types.
void expect_json_schema(const json::object& schema, bool query) {
  if (query) {
    EXPECT_EQ(schema.at("type").as_string(), "string");
    return;
  }
  EXPECT_FALSE(schema.contains("type")) << "a JSON option has several types in a body";
  std::set<std::string> types;
  if (const json::value* any = schema.if_contains("anyOf")) {
    for (const json::value& s : any->as_array()) {
      if (const json::value* t = s.as_object().if_contains("type")) {
        types.insert(std::string(t->as_string()));
      }
    }
  }
  EXPECT_TRUE(types.contains("array") && types.contains("string"))
      << "anyOf must offer an array and its text";
}

// Checks one schema of the document (a property of DitherOptions, or a query parameter's schema:
// a query string's booleans are text there) against the table's row.
void expect_schema_says(const OptionInfo& o, const json::object& schema, bool query,
                        const std::string& where) {
  SCOPED_TRACE(where + " " + std::string(o.name));
  const bool text_boolean = query && o.type == OptionType::kBoolean;
  if (o.type == OptionType::kJson) {
    expect_json_schema(schema, query);
  } else {
    EXPECT_EQ(schema.at("type").as_string(), text_boolean ? "string" : to_string(o.type));
  }
  const json::array* e = enum_of(schema);
  if (o.choices.empty()) {
    EXPECT_EQ(e, nullptr) << "the document has choices the table does not";
  } else if (e == nullptr) {
    ADD_FAILURE() << "the document lacks the choices";
  } else {
    json::array expected;
    for (const OptionChoice& c : o.choices) expected.push_back(typed(o.type, c.value));
    EXPECT_EQ(*e, expected);
  }
  const bool ranged =
      (o.type == OptionType::kInteger || o.type == OptionType::kNumber) && o.choices.empty();
  if (ranged) {
    EXPECT_TRUE(schema.contains("minimum") && same_number(schema.at("minimum"), o.minimum));
    EXPECT_TRUE(schema.contains("maximum") && same_number(schema.at("maximum"), o.maximum));
  } else {
    EXPECT_FALSE(schema.contains("minimum") || schema.contains("maximum"));
  }
  if (o.default_value.empty()) {
    EXPECT_FALSE(schema.contains("default"));
  } else if (!schema.contains("default")) {
    ADD_FAILURE() << "the document lacks the default " << o.default_value;
  } else if (text_boolean) {
    EXPECT_EQ(schema.at("default"), json::value(json::string(o.default_value)));
  } else {
    EXPECT_EQ(schema.at("default"), typed(o.type, o.default_value));
  }
}

TEST(OptionDocuments, TheOpenApiBodySchemaIsTheTable) {
  const json::object& properties =
      openapi().at("schemas").at("DitherOptions").at("properties").as_object();
  std::set<std::string> documented;
  for (const auto& [name, schema] : properties) documented.insert(std::string(name));
  std::set<std::string> table = {"preset"};  // a name for options, not an option (presets.h)
  for (const OptionInfo* o : request_options()) {
    table.insert(std::string(o->name));
    if (const json::value* schema = properties.if_contains(o->name)) {
      expect_schema_says(*o, schema->as_object(), false, "DitherOptions");
    }
  }
  EXPECT_EQ(documented, table);
}

TEST(OptionDocuments, TheOpenApiQueryParametersAreTheTable) {
  const json::object& parameters = openapi().at("parameters").as_object();
  std::set<std::string> documented;
  for (const auto& [key, p] : parameters) {
    if (key.starts_with("opt_")) documented.insert(std::string(p.at("name").as_string()));
  }
  std::set<std::string> table = {"preset"};
  for (const OptionInfo* o : request_options()) {
    table.insert(std::string(o->name));
    const std::string key = "opt_" + std::string(o->name);
    if (!parameters.contains(key)) continue;
    const json::object& p = parameters.at(key).as_object();
    EXPECT_EQ(p.at("in").as_string(), "query");
    expect_schema_says(*o, p.at("schema").as_object(), true, key);
  }
  EXPECT_EQ(documented, table);
}

TEST(OptionDocuments, TheApiGuideTableIsTheTable) {
  const std::string doc = read_file("docs/API.md");
  const std::string begin = "<!-- options table: begin -->\n";
  const std::string end = "<!-- options table: end -->";
  const size_t from = doc.find(begin);
  const size_t to = doc.find(end);
  ASSERT_NE(from, std::string::npos);
  ASSERT_NE(to, std::string::npos);
  EXPECT_EQ(doc.substr(from + begin.size(), to - from - begin.size()), options_markdown())
      << "paste the output of: dither --list-options markdown";
}

}  // namespace
}  // namespace dither::pipeline
