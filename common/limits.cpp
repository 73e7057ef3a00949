#include "common/limits.hpp"

#include <cctype>
#include <cstdlib>
#include <limits>
#include <optional>

#include "common/format.hpp"

namespace envbuild::common {

namespace {

/// "123", "64K", "100G" (binary units, as human_bytes prints them).
std::optional<uint64_t> parse_count(std::string_view text, bool sizes) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text.front()))) return std::nullopt;
  uint64_t value = 0;
  size_t i = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    if (value > (std::numeric_limits<uint64_t>::max() - 9) / 10) return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  std::string_view unit = text.substr(i);
  if (unit.empty()) return value;
  if (!sizes) return std::nullopt;
  static constexpr std::string_view kUnits = "KMGT";
  size_t shift = kUnits.find(static_cast<char>(std::toupper(static_cast<unsigned char>(unit[0]))));
  if (shift == std::string_view::npos ||
      (unit.size() > 1 && unit.substr(1) != "iB" && unit.substr(1) != "B" && unit.substr(1) != "i"))
    return std::nullopt;
  const unsigned bits = 10 * static_cast<unsigned>(shift + 1);
  if (value > (std::numeric_limits<uint64_t>::max() >> bits)) return std::nullopt;
  return value << bits;
}

Result<void> apply(const std::string& variable, bool sizes, uint64_t& field) {
  const char* text = std::getenv(variable.c_str());
  if (text == nullptr || *text == '\0') return ok();
  auto value = parse_count(text, sizes);
  if (!value)
    return fail(Errc::InvalidInput, variable + "='" + text + "': expected " +
                                        (sizes ? "a size such as 100G or 512M" : "a number") +
                                        " (0: no limit)");
  field = *value;
  return ok();
}

std::string shown(uint64_t value, bool sizes) {
  return sizes ? human_bytes(value) : std::to_string(value);
}

}  // namespace

Result<UnpackLimits> UnpackLimits::from_environment(std::string_view tool) {
  UnpackLimits limits;
  limits.tool = std::string(tool);
  const std::string prefix = limits.tool + "_";
  ENVB_TRY(apply(prefix + "MAX_EXPANSION", false, limits.max_expansion));
  ENVB_TRY(apply(prefix + "MAX_UNPACKED_BYTES", true, limits.max_bytes));
  ENVB_TRY(apply(prefix + "MAX_ENTRIES", false, limits.max_entries));
  ENVB_TRY(apply(prefix + "MAX_LAYERS", false, limits.max_layers));
  return limits;
}

Error limit_exceeded(const UnpackLimits& limits, std::string_view variable, std::string message,
                     std::string_view limit) {
  return Error(Errc::Integrity, std::move(message) + " (limit: " + std::string(limit) + ")")
      .with_hint("if the input is trusted, raise the limit with " + limits.tool + "_" +
                 std::string(variable) + "=N (0: no limit)");
}

Result<void> check_layer_count(const UnpackLimits& limits, std::string_view image,
                               uint64_t layers) {
  if (limits.max_layers == 0 || layers <= limits.max_layers) return ok();
  return limit_exceeded(limits, "MAX_LAYERS",
                        std::string(image) + " has " + std::to_string(layers) + " layers",
                        std::to_string(limits.max_layers) + " layers");
}

Result<void> check_entry_path(const UnpackLimits& limits, std::string_view path) {
  auto shown = [&] {
    return "entry '" + std::string(path.substr(0, 120)) + (path.size() > 120 ? "...'" : "'");
  };
  if (path.size() > limits.max_path_length)
    return fail(Errc::Integrity, shown() + ": a path of " + std::to_string(path.size()) +
                                     " bytes, longer than any path can be (" +
                                     std::to_string(limits.max_path_length) + ")");
  size_t depth = 1;
  for (char c : path) depth += c == '/' ? 1 : 0;
  if (depth > limits.max_path_depth)
    return fail(Errc::Integrity, shown() + ": a path of " + std::to_string(depth) +
                                     " components, deeper than a tree may nest (" +
                                     std::to_string(limits.max_path_depth) + ")");
  return ok();
}

Result<void> check_unpack_limits(const UnpackLimits& limits, std::string_view what,
                                 uint64_t entries, uint64_t bytes_so_far, uint64_t entry_bytes,
                                 uint64_t compressed_size) {
  if (limits.max_entries != 0 && entries > limits.max_entries)
    return limit_exceeded(limits, "MAX_ENTRIES",
                          std::string(what) + ": more entries than an archive may have",
                          shown(limits.max_entries, false) + " entries");
  const uint64_t total = bytes_so_far + entry_bytes;
  if (total < bytes_so_far || (limits.max_bytes != 0 && total > limits.max_bytes))
    return limit_exceeded(limits, "MAX_UNPACKED_BYTES",
                          std::string(what) + " takes the unpacked content past the limit",
                          shown(limits.max_bytes, true));
  if (limits.max_expansion != 0 && compressed_size != 0 && total > limits.expansion_floor &&
      total / limits.max_expansion > compressed_size)
    return limit_exceeded(
        limits, "MAX_EXPANSION",
        std::string(what) + " takes the content to " + human_bytes(total) + ", more than " +
            std::to_string(limits.max_expansion) + " times the " + human_bytes(compressed_size) +
            " of the compressed archive: a decompression bomb",
        std::to_string(limits.max_expansion) + "x past " + human_bytes(limits.expansion_floor));
  return ok();
}

}  // namespace envbuild::common
