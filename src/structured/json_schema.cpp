// SchemaCompiler: keyword checks, $ref, anyOf / type unions, objects and arrays. Strings, numbers and
// formats are json_primitives.cpp's.
#include "structured/json_schema.h"

#include <algorithm>
#include <set>

#include "core/error.h"

namespace adallm::structured {
namespace {

using json = nlohmann::ordered_json;

// Keywords that describe without constraining: accepted and not enforced.
const std::set<std::string> kAnnotations = {"title", "description", "default", "examples", "$schema", "$id",
                                            "$comment", "deprecated", "readOnly", "writeOnly", "$defs",
                                            "definitions"};
const std::set<std::string> kObjectKeywords = {"properties", "required", "additionalProperties"};
const std::set<std::string> kArrayKeywords = {"items", "prefixItems", "minItems", "maxItems"};
const std::set<std::string> kStringKeywords = {"minLength", "maxLength", "format", "pattern"};
const std::set<std::string> kNumberKeywords = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
const std::set<std::string> kTypes = {"string", "number", "integer", "boolean", "null", "object", "array"};

// Arrays up to this many items, and bounded strings, are spelled out rule by rule.
constexpr int64_t kMaxExpansion = 4096;

bool annotation(const std::string& key) { return kAnnotations.count(key) > 0; }

std::string keys_in(const json& schema, const std::set<std::string>& keywords) {
  std::string found;
  for (const auto& [key, value] : schema.items()) {
    if (keywords.count(key)) found += (found.empty() ? "" : ", ") + key;
  }
  return found;
}

int64_t count_field(const json& schema, const char* key, const std::string& path) {
  const json& v = schema.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    throw SchemaError(path + "." + key, "expected a non-negative integer, got " + v.dump());
  }
  if (v.get<int64_t>() > kMaxExpansion) {
    throw SchemaError(path + "." + key, "at most " + std::to_string(kMaxExpansion) + " is supported, got " + v.dump());
  }
  return v.get<int64_t>();
}

}  // namespace

SchemaCompiler::SchemaCompiler(GrammarBuilder& builder, const json& document, std::string document_path)
    : b_(builder), document_(document), document_path_(std::move(document_path)) {}

int32_t SchemaCompiler::space() {
  auto [it, added] = shared_.emplace("space", 0);
  if (added) it->second = b_.rule({{}, b_.literal(" ")});
  return it->second;
}

int32_t SchemaCompiler::compile(const json& schema, const std::string& path) {
  if (schema.is_boolean()) {
    if (schema.get<bool>()) return any_value();
    throw SchemaError(path, "the schema false admits no value");
  }
  if (!schema.is_object()) throw SchemaError(path, "expected a schema object or a boolean, got " + schema.dump());
  // Every keyword is one we enforce, or an annotation: anything else is refused by name.
  for (const auto& [key, value] : schema.items()) {
    const bool known = annotation(key) || kObjectKeywords.count(key) || kArrayKeywords.count(key) ||
                       kStringKeywords.count(key) || kNumberKeywords.count(key) || key == "type" || key == "enum" ||
                       key == "const" || key == "anyOf" || key == "oneOf" || key == "allOf" || key == "$ref";
    if (!known) throw SchemaError(path + "." + key, "the keyword \"" + key + "\" is not supported");
  }
  std::vector<std::string> combinators;
  for (const char* key : {"$ref", "anyOf", "oneOf", "allOf", "enum", "const"}) {
    if (schema.contains(key)) combinators.emplace_back(key);
  }
  if (combinators.size() > 1) {
    throw SchemaError(path + "." + combinators[1], combinators[1] + " together with " + combinators[0] +
                                                       " is not supported");
  }
  if (!combinators.empty()) {
    const std::string& key = combinators[0];
    const std::string at = path + "." + key;
    // enum and const may repeat the type of their values; other keywords would need an intersection.
    for (const auto& [other, value] : schema.items()) {
      if (other != key && !annotation(other) && !((key == "enum" || key == "const") && other == "type")) {
        throw SchemaError(path + "." + other, other + " together with " + key + " is not supported");
      }
    }
    const json& v = schema.at(key);
    if (key == "$ref") {
      if (!v.is_string()) throw SchemaError(at, "expected a string, got " + v.dump());
      return compile_ref(v.get<std::string>(), at);
    }
    if (key == "const") return literal_value(v);
    if (!v.is_array() || v.empty()) throw SchemaError(at, "expected a non-empty array, got " + v.dump());
    if (key == "allOf") {
      if (v.size() != 1) throw SchemaError(at, "allOf with more than one schema is not supported");
      return compile(v[0], at + ".0");
    }
    const int32_t r = b_.declare();
    for (size_t i = 0; i < v.size(); ++i) {
      // oneOf is enforced as anyOf: a text valid under two branches is not refused.
      const int32_t alt = key == "enum" ? literal_value(v[i]) : compile(v[i], at + "." + std::to_string(i));
      b_.alternative(r, {GrammarBuilder::ref(alt)});
    }
    return r;
  }
  if (!schema.contains("type")) {
    // The type the keywords imply, or any value.
    const bool object = !keys_in(schema, kObjectKeywords).empty(), array = !keys_in(schema, kArrayKeywords).empty();
    const bool string = !keys_in(schema, kStringKeywords).empty(), number = !keys_in(schema, kNumberKeywords).empty();
    if (object + array + string + number > 1) {
      throw SchemaError(path, "keywords of several types without \"type\" are not supported");
    }
    if (object) return compile_type("object", schema, path);
    if (array) return compile_type("array", schema, path);
    if (string) return compile_type("string", schema, path);
    if (number) return compile_type("number", schema, path);
    return any_value();
  }
  const json& type = schema.at("type");
  std::vector<std::string> types;
  if (type.is_string()) {
    types.push_back(type.get<std::string>());
  } else if (type.is_array() && !type.empty()) {
    for (const json& t : type) {
      if (!t.is_string()) throw SchemaError(path + ".type", "expected type names, got " + type.dump());
      types.push_back(t.get<std::string>());
    }
  } else {
    throw SchemaError(path + ".type", "expected a type name or a non-empty array of them, got " + type.dump());
  }
  std::set<std::string> applicable;
  for (const std::string& t : types) {
    if (!kTypes.count(t)) throw SchemaError(path + ".type", "unknown type \"" + t + "\"");
    if (t == "object") applicable.insert(kObjectKeywords.begin(), kObjectKeywords.end());
    if (t == "array") applicable.insert(kArrayKeywords.begin(), kArrayKeywords.end());
    if (t == "string") applicable.insert(kStringKeywords.begin(), kStringKeywords.end());
    if (t == "number" || t == "integer") applicable.insert(kNumberKeywords.begin(), kNumberKeywords.end());
  }
  for (const auto& [key, value] : schema.items()) {
    if (key != "type" && !annotation(key) && !applicable.count(key)) {
      throw SchemaError(path + "." + key, "the keyword \"" + key + "\" does not apply to type " + type.dump());
    }
  }
  if (types.size() == 1) return compile_type(types[0], schema, path);
  const int32_t r = b_.declare();
  for (const std::string& t : types) b_.alternative(r, {GrammarBuilder::ref(compile_type(t, schema, path))});
  return r;
}

int32_t SchemaCompiler::compile_type(const std::string& type, const json& schema, const std::string& path) {
  if (type == "object") return object(schema, path);
  if (type == "array") return array(schema, path);
  if (type == "string") return string(schema, path);
  if (type == "integer") return integer(schema, path);
  if (type == "number") return number(schema, path);
  if (type == "boolean") return b_.rule({b_.literal("true"), b_.literal("false")});
  return b_.rule({b_.literal("null")});
}

int32_t SchemaCompiler::compile_ref(const std::string& ref, const std::string& path) {
  if (const auto it = refs_.find(ref); it != refs_.end()) return it->second;
  const json* target = nullptr;
  std::string target_path;
  if (ref == "#") {
    target = &document_;
    target_path = document_path_;
  } else {
    for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
      const std::string p = prefix;
      if (ref.rfind(p, 0) != 0) continue;
      const std::string name = ref.substr(p.size());
      const std::string section = p.substr(2, p.size() - 3);
      if (document_.is_object() && document_.contains(section) && document_.at(section).is_object() &&
          document_.at(section).contains(name)) {
        target = &document_.at(section).at(name);
        target_path = document_path_ + "." + section + "." + name;
      }
    }
  }
  if (target == nullptr) {
    throw SchemaError(path, "cannot resolve \"" + ref + "\"; expected \"#\", \"#/$defs/NAME\" or \"#/definitions/NAME\""
                            " naming a schema of this document");
  }
  // Declared before compiling the target, so that the target may refer back to itself.
  const int32_t r = b_.declare();
  refs_[ref] = r;
  b_.alternative(r, {GrammarBuilder::ref(compile(*target, target_path))});
  return r;
}

int32_t SchemaCompiler::object(const json& schema, const std::string& path) {
  json properties = json::object();
  std::vector<std::string> order;
  if (schema.contains("properties")) {
    properties = schema.at("properties");
    if (!properties.is_object()) throw SchemaError(path + ".properties", "expected an object, got " + properties.dump());
    for (const auto& [key, value] : properties.items()) order.push_back(key);
  }
  std::set<std::string> required;
  if (schema.contains("required")) {
    const json& req = schema.at("required");
    if (!req.is_array()) throw SchemaError(path + ".required", "expected an array of names, got " + req.dump());
    for (const json& name : req) {
      if (!name.is_string()) throw SchemaError(path + ".required", "expected an array of names, got " + req.dump());
      if (!properties.contains(name.get<std::string>())) {
        throw SchemaError(path + ".required", "\"" + name.get<std::string>() +
                                                  "\" is not in properties (only listed properties can be required)");
      }
      required.insert(name.get<std::string>());
    }
  }
  // Extra members: allowed when additionalProperties is true or a schema, or when the schema lists no
  // properties at all ({"type": "object"} is any object); absent otherwise, as OpenAI's strict mode wants.
  std::optional<int32_t> extra;
  if (schema.contains("additionalProperties")) {
    const json& ap = schema.at("additionalProperties");
    if (!(ap.is_boolean() || ap.is_object())) {
      throw SchemaError(path + ".additionalProperties", "expected a boolean or a schema, got " + ap.dump());
    }
    if (!(ap.is_boolean() && !ap.get<bool>())) extra = compile(ap, path + ".additionalProperties");
  } else if (order.empty()) {
    extra = any_value();
  }
  const int32_t sp = space();
  // tail[first]: extra members after the listed ones; `first`: no member written yet (no comma before).
  int32_t tail[2] = {-1, -1};
  if (extra) {
    const int32_t more = b_.declare();  // ("," sp key ":" sp value)*
    std::vector<Element> member = b_.literal(",");
    member.push_back(GrammarBuilder::ref(sp));
    member.push_back(GrammarBuilder::ref(plain_string()));
    b_.literal(":", member);
    member.push_back(GrammarBuilder::ref(sp));
    member.push_back(GrammarBuilder::ref(*extra));
    member.push_back(GrammarBuilder::ref(more));
    b_.alternative(more, {});
    b_.alternative(more, member);
    tail[0] = more;
    std::vector<Element> first = {GrammarBuilder::ref(plain_string())};
    b_.literal(":", first);
    first.push_back(GrammarBuilder::ref(sp));
    first.push_back(GrammarBuilder::ref(*extra));
    first.push_back(GrammarBuilder::ref(more));
    tail[1] = b_.rule({{}, first});
  } else {
    tail[0] = tail[1] = b_.rule({{}});
  }
  // rest[i][first]: the members from property i on, each present unless it is optional and skipped.
  int32_t next[2] = {tail[0], tail[1]};
  for (size_t i = order.size(); i-- > 0;) {
    const std::string& key = order[i];
    const int32_t value = compile(properties.at(key), path + ".properties." + key);
    int32_t here[2];
    for (int first = 0; first < 2; ++first) {
      std::vector<Element> present;
      if (!first) {
        b_.literal(",", present);
        present.push_back(GrammarBuilder::ref(sp));
      }
      b_.literal(json(key).dump() + ":", present);
      present.push_back(GrammarBuilder::ref(sp));
      present.push_back(GrammarBuilder::ref(value));
      present.push_back(GrammarBuilder::ref(next[0]));
      here[first] = required.count(key) ? b_.rule({present})
                                        : b_.rule({present, {GrammarBuilder::ref(next[first])}});
    }
    next[0] = here[0];
    next[1] = here[1];
  }
  std::vector<Element> whole = b_.literal("{");
  whole.push_back(GrammarBuilder::ref(next[1]));
  b_.literal("}", whole);
  return b_.rule({whole});
}

int32_t SchemaCompiler::array(const json& schema, const std::string& path) {
  std::vector<int32_t> prefix;
  if (schema.contains("prefixItems")) {
    const json& p = schema.at("prefixItems");
    if (!p.is_array()) throw SchemaError(path + ".prefixItems", "expected an array of schemas, got " + p.dump());
    for (size_t i = 0; i < p.size(); ++i) prefix.push_back(compile(p[i], path + ".prefixItems." + std::to_string(i)));
  }
  // Items past prefixItems: the items schema; any value when neither keyword is given; none when
  // prefixItems is given without items (or with items false).
  std::optional<int32_t> item;
  if (schema.contains("items")) {
    const json& it = schema.at("items");
    if (!(it.is_boolean() && !it.get<bool>())) item = compile(it, path + ".items");
  } else if (prefix.empty()) {
    item = any_value();
  }
  const int64_t min_items = schema.contains("minItems") ? count_field(schema, "minItems", path) : 0;
  std::optional<int64_t> max_items;
  if (schema.contains("maxItems")) max_items = count_field(schema, "maxItems", path);
  const auto k = static_cast<int64_t>(prefix.size());
  const int64_t most = item ? max_items.value_or(-1) : std::min<int64_t>(k, max_items.value_or(k));
  if (min_items > k && !item) {
    throw SchemaError(path + ".minItems", "minItems " + std::to_string(min_items) + " exceeds the " +
                                              std::to_string(k) + " prefixItems with no items allowed after them");
  }
  if (most >= 0 && min_items > most) {
    throw SchemaError(path + ".minItems", "minItems " + std::to_string(min_items) + " exceeds maxItems " +
                                              std::to_string(most));
  }
  const int32_t sp = space();
  const auto element = [&](int64_t i) { return i < k ? prefix[static_cast<size_t>(i)] : *item; };
  // after[i]: the rest of the array once i items are written. Past max(k, min_items) with no maxItems, one
  // looping rule does for every count.
  const int64_t spelled = most >= 0 ? most : std::max(k, min_items);
  int32_t after_next = -1;
  if (most < 0) {
    after_next = b_.declare();
    std::vector<Element> more = b_.literal(",");
    more.push_back(GrammarBuilder::ref(sp));
    more.push_back(GrammarBuilder::ref(*item));
    more.push_back(GrammarBuilder::ref(after_next));
    b_.alternative(after_next, {});
    b_.alternative(after_next, more);
  } else {
    after_next = b_.rule({{}});
  }
  for (int64_t i = spelled; i-- > 0;) {
    std::vector<Element> more;
    if (i > 0) {
      b_.literal(",", more);
      more.push_back(GrammarBuilder::ref(sp));
    }
    more.push_back(GrammarBuilder::ref(element(i)));
    more.push_back(GrammarBuilder::ref(after_next));
    after_next = i >= min_items ? b_.rule({{}, more}) : b_.rule({more});
  }
  if (spelled == 0 && most < 0) {
    // No prefix and no minimum: the first item has no comma before it.
    std::vector<Element> first = {GrammarBuilder::ref(*item), GrammarBuilder::ref(after_next)};
    after_next = b_.rule({{}, first});
  }
  std::vector<Element> whole = b_.literal("[");
  whole.push_back(GrammarBuilder::ref(after_next));
  b_.literal("]", whole);
  return b_.rule({whole});
}

int32_t SchemaCompiler::literal_value(const json& value) {
  // The compact serialization (UTF-8 kept as is): the one spelling of the value that is accepted.
  return b_.rule({b_.literal(value.dump())});
}

int32_t SchemaCompiler::any_value() {
  auto [it, added] = shared_.emplace("value", 0);
  if (!added) return it->second;
  const int32_t r = b_.declare();
  it->second = r;
  const int32_t sp = space();
  // Any object and any array, over `value` itself.
  const int32_t member_more = b_.declare();
  std::vector<Element> member = {GrammarBuilder::ref(plain_string())};
  b_.literal(":", member);
  member.push_back(GrammarBuilder::ref(sp));
  member.push_back(GrammarBuilder::ref(r));
  std::vector<Element> more = b_.literal(",");
  more.push_back(GrammarBuilder::ref(sp));
  more.insert(more.end(), member.begin(), member.end());
  more.push_back(GrammarBuilder::ref(member_more));
  b_.alternative(member_more, {});
  b_.alternative(member_more, more);
  std::vector<Element> object = b_.literal("{");
  object.insert(object.end(), member.begin(), member.end());
  object.push_back(GrammarBuilder::ref(member_more));
  b_.literal("}", object);
  shared_["object"] = b_.rule({b_.literal("{}"), object});

  const int32_t item_more = b_.declare();
  std::vector<Element> item = b_.literal(",");
  item.push_back(GrammarBuilder::ref(sp));
  item.push_back(GrammarBuilder::ref(r));
  item.push_back(GrammarBuilder::ref(item_more));
  b_.alternative(item_more, {});
  b_.alternative(item_more, item);
  std::vector<Element> array = b_.literal("[");
  array.push_back(GrammarBuilder::ref(r));
  array.push_back(GrammarBuilder::ref(item_more));
  b_.literal("]", array);
  const int32_t any_array = b_.rule({b_.literal("[]"), array});

  for (int32_t alt : {shared_["object"], any_array, plain_string(), plain_number()}) {
    b_.alternative(r, {GrammarBuilder::ref(alt)});
  }
  for (const char* word : {"true", "false", "null"}) b_.alternative(r, b_.literal(word));
  return r;
}

int32_t SchemaCompiler::any_object() {
  any_value();
  return shared_.at("object");
}

Grammar compile_json_schema(const json& schema, const std::string& path) {
  GrammarBuilder b;
  SchemaCompiler compiler(b, schema, path);
  // The document itself is "#", so a $ref to the root shares its rule.
  const int32_t root = compiler.compile(json{{"$ref", "#"}}, path);
  try {
    return b.finish(root);
  } catch (const Error& e) {
    throw SchemaError(path, e.message());
  }
}

Grammar json_object_grammar() {
  GrammarBuilder b;
  const json none;
  SchemaCompiler compiler(b, none, "");
  return b.finish(compiler.any_object());
}

}  // namespace adallm::structured
