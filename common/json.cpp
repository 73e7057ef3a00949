#include "common/json.hpp"

#include <string>

namespace envbuild::common {

namespace {

using json = nlohmann::json;

/// nlohmann's own DOM builder (what json::parse uses), behind a depth counter: returning false
/// from an event stops the parse at once.
class BoundedDomBuilder {
 public:
  BoundedDomBuilder(json& result, size_t max_depth) : dom_(result, false), max_depth_(max_depth) {}

  bool null() { return dom_.null(); }
  bool boolean(bool value) { return dom_.boolean(value); }
  bool number_integer(json::number_integer_t value) { return dom_.number_integer(value); }
  bool number_unsigned(json::number_unsigned_t value) { return dom_.number_unsigned(value); }
  bool number_float(json::number_float_t value, const json::string_t& text) {
    return dom_.number_float(value, text);
  }
  bool string(json::string_t& value) { return dom_.string(value); }
  bool binary(json::binary_t& value) { return dom_.binary(value); }
  bool key(json::string_t& value) { return dom_.key(value); }
  bool start_object(std::size_t elements) { return enter() && dom_.start_object(elements); }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t elements) { return enter() && dom_.start_array(elements); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    syntax_error_ = e.what();
    return false;
  }

  [[nodiscard]] bool too_deep() const { return too_deep_; }
  [[nodiscard]] const std::string& syntax_error() const { return syntax_error_; }

 private:
  bool enter() {
    if (++depth_ <= max_depth_) return true;
    too_deep_ = true;
    return false;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  size_t max_depth_;
  size_t depth_ = 0;
  bool too_deep_ = false;
  std::string syntax_error_;
};

/// Both formats go through nlohmann's SAX reader into the same depth-bounded builder.
Result<json> parse_bounded(std::string_view text, json::input_format_t format,
                           std::string_view format_name, std::string_view what, Errc code,
                           size_t max_depth) {
  json result;
  BoundedDomBuilder builder(result, max_depth);
  bool parsed = false;
  try {
    parsed = json::sax_parse(text, &builder, format, /*strict=*/true);
  } catch (const json::exception& e) {  // the builder reports errors; this is a safety net
    return fail(code, std::string(what) + ": invalid " + std::string(format_name) + ": " + e.what());
  }
  if (builder.too_deep())
    return fail(code, std::string(what) + ": arrays and objects nested more than " +
                          std::to_string(max_depth) + " levels deep; refusing to read it");
  if (!parsed || !builder.syntax_error().empty())
    return fail(code, std::string(what) + ": invalid " + std::string(format_name) + ": " +
                          (builder.syntax_error().empty() ? std::string("parse stopped")
                                                          : builder.syntax_error()));
  return result;
}

}  // namespace

Result<json> parse_json(std::string_view text, std::string_view what, Errc code, size_t max_depth) {
  return parse_bounded(text, json::input_format_t::json, "JSON", what, code, max_depth);
}

Result<json> parse_msgpack(std::string_view bytes, std::string_view what, Errc code,
                           size_t max_depth) {
  return parse_bounded(bytes, json::input_format_t::msgpack, "msgpack", what, code, max_depth);
}

}  // namespace envbuild::common
