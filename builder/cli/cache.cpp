// `envbuild cache`: what the cache holds (packages, repodata, layers, plans, blobs, temp space:
// entries, sizes, last use), and `envbuild cache prune` to remove what has not been used for a
// while (--older-than) or everything (--all), never what a running envbuild uses
// (builder/install/cache.hpp).

#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "builder/cli/cli.hpp"
#include "builder/cli/solve_options.hpp"
#include "builder/install/cache.hpp"
#include "builder/install/package_cache.hpp"
#include "common/format.hpp"

namespace envbuild::builder::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

struct CacheCliOptions {
  std::string cache_dir;
  bool json = false;
  std::string older_than;
  bool all = false;
  bool dry_run = false;
  bool no_wait = false;
};

// "30d", "12h", "45m", "90s", "2w".
Result<std::chrono::seconds> parse_age(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string unit = text.substr(digits);
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 7 * 86400}};
  if (digits > 0 && digits <= 9)
    for (const auto& [name, seconds] : kUnits)
      if (unit == name) return std::chrono::seconds(std::stoll(text.substr(0, digits)) * seconds);
  return fail(Errc::InvalidInput, "--older-than '" + text + "' is not a duration")
      .with_hint("a number and a unit: 90s, 45m, 12h, 30d, 2w");
}

std::string utc_text(Clock::time_point t) {
  const std::time_t time = Clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&time, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string age_text(Clock::time_point t) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - t).count();
  if (seconds < 120) return "just now";
  if (seconds < 7200) return std::to_string(seconds / 60) + " minutes ago";
  if (seconds < 2 * 86400) return std::to_string(seconds / 3600) + " hours ago";
  return std::to_string(seconds / 86400) + " days ago";
}

nlohmann::json to_json(const std::vector<CacheCategory>& categories) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : categories)
    out.push_back({{"name", c.name},
                   {"description", c.description},
                   {"entries", c.entries},
                   {"bytes", c.bytes},
                   {"last_use", c.last_use ? nlohmann::json(utc_text(*c.last_use)) : nullptr}});
  return out;
}

void print_table(const std::vector<CacheCategory>& categories) {
  uint64_t total = 0;
  std::printf("%-10s %8s %11s  %-20s %s\n", "KIND", "ENTRIES", "SIZE", "LAST USE", "WHAT");
  for (const auto& c : categories) {
    total += c.bytes;
    const std::string last = c.last_use ? age_text(*c.last_use) : "-";
    std::printf("%-10s %8zu %11s  %-20s %s\n", c.name.c_str(), c.entries,
                human_bytes(c.bytes).c_str(), last.c_str(), c.description.c_str());
  }
  std::printf("%-10s %8s %11s\n", "total", "", human_bytes(total).c_str());
}

Result<int> run_list(const CacheCliOptions& o) {
  ENVB_ASSIGN_OR_RETURN(fs::path root, open_cache_root(o.cache_dir));
  ENVB_ASSIGN_OR_RETURN(auto categories, list_cache(root));
  if (o.json) {
    std::cout << nlohmann::json{{"root", root.string()}, {"categories", to_json(categories)}}.dump(
                     2)
              << "\n";
    return 0;
  }
  std::printf("cache %s\n", root.c_str());
  print_table(categories);
  return 0;
}

Result<int> run_prune(const CacheCliOptions& o) {
  if (o.all == !o.older_than.empty())
    return fail(Errc::InvalidInput, "give one of --older-than DURATION and --all");
  PruneOptions options;
  if (!o.all) {
    ENVB_ASSIGN_OR_RETURN(options.older_than, parse_age(o.older_than));
  }
  options.dry_run = o.dry_run;
  options.wait = !o.no_wait;
  options.progress = [](const std::string& line) { std::cerr << line << "\n"; };
  ENVB_ASSIGN_OR_RETURN(fs::path root, open_cache_root(o.cache_dir));
  ENVB_ASSIGN_OR_RETURN(PruneReport report, prune_cache(root, options));
  if (o.json) {
    std::cout << nlohmann::json{{"root", root.string()},
                                {"dry_run", o.dry_run},
                                {"entries", report.entries},
                                {"bytes", report.bytes},
                                {"removed", to_json(report.removed)}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::printf("%s %zu entries (%s) from %s\n", o.dry_run ? "would remove" : "removed",
              report.entries, human_bytes(report.bytes).c_str(), root.c_str());
  for (const auto& c : report.removed)
    if (c.entries > 0)
      std::printf("  %-10s %6zu %11s\n", c.name.c_str(), c.entries, human_bytes(c.bytes).c_str());
  return 0;
}

}  // namespace

void register_cache(CLI::App& app, Outcome& outcome) {
  auto o = std::make_shared<CacheCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "cache", "List what the cache holds (sizes, last use), or prune it (see 'cache prune')");
  cmd->require_subcommand(0, 1);
  add_cache_option(cmd, o->cache_dir);
  cmd->add_flag("--json", o->json, "print JSON");
  cmd->callback([o, cmd, &outcome] {
    if (cmd->get_subcommands().empty()) outcome.result = run_list(*o);
  });

  CLI::App* prune = cmd->add_subcommand(
      "prune",
      "Remove cache entries unused for a while, or all; waits for running envbuild commands");
  add_cache_option(prune, o->cache_dir);
  prune->add_option("--older-than", o->older_than,
                    "remove what was last used longer ago than this: 90s, 45m, 12h, 30d, 2w");
  prune->add_flag("--all", o->all, "remove everything");
  prune->add_flag("--dry-run", o->dry_run, "say what would go, remove nothing");
  prune->add_flag("--no-wait", o->no_wait,
                  "fail instead of waiting when other envbuild commands use the cache");
  prune->add_flag("--json", o->json, "print JSON");
  prune->footer("Example: envbuild cache prune --older-than 30d");
  prune->callback([o, &outcome] { outcome.result = run_prune(*o); });
}

}  // namespace envbuild::builder::cli
