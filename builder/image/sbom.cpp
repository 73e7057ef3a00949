#include "builder/image/sbom.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "common/ascii.hpp"
#include "common/hash.hpp"
#include "common/http.hpp"
#include "common/url.hpp"
#include "common/version.hpp"

namespace envbuild::builder {

namespace {

bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

std::string spdx_id(size_t index, const std::string& name) {
  std::string id = "SPDXRef-Package-conda-" + std::to_string(index) + "-";
  for (char c : name) id += id_char(c) ? c : '-';
  return id;
}

// The channel part of a package URL (".../conda-forge/linux-64/x.conda" -> ".../conda-forge").
std::string channel_url(const conda::PackageRecord& r) {
  std::string url = r.url;
  for (int i = 0; i < 2; ++i) {
    auto slash = url.rfind('/');
    if (slash == std::string::npos) return r.channel;
    url.resize(slash);
  }
  return url;
}

}  // namespace

bool looks_like_spdx_expression(const std::string& license) {
  if (license.empty()) return false;
  bool expect_id = true;
  size_t i = 0, depth = 0;
  while (i < license.size()) {
    char c = license[i];
    if (c == ' ') {
      ++i;
      continue;
    }
    if (c == '(') {
      if (!expect_id) return false;
      ++depth;
      ++i;
      continue;
    }
    if (c == ')') {
      if (expect_id || depth == 0) return false;
      --depth;
      ++i;
      continue;
    }
    size_t j = i;
    while (j < license.size() && (id_char(license[j]) || license[j] == '+' || license[j] == ':'))
      ++j;
    if (j == i) return false;
    std::string word = license.substr(i, j - i);
    if (word == "AND" || word == "OR" || word == "WITH") {
      if (expect_id) return false;
      expect_id = true;
    } else {
      if (!expect_id) return false;
      expect_id = false;
    }
    i = j;
  }
  return !expect_id && depth == 0;
}

std::string conda_purl(const conda::PackageRecord& r) {
  std::string type = r.fn.ends_with(".tar.bz2") || r.url.ends_with(".tar.bz2") ? "tar.bz2" : "conda";
  std::string purl = "pkg:conda/" + common::url_escape(r.name) + "@" +
                     common::url_escape(r.version.to_string()) +
                     "?build=" + common::url_escape(r.build);
  std::string channel = channel_url(r);
  if (!channel.empty()) purl += "&channel=" + common::url_escape(channel);
  if (!r.subdir.empty()) purl += "&subdir=" + common::url_escape(r.subdir);
  return purl + "&type=" + type;
}

std::string pypi_purl(const pypi::WheelToInstall& wheel) {
  // purl's pypi type: lower case, '_' as '-' (dots stay).
  std::string name = common::ascii_lower(wheel.name);
  std::replace(name.begin(), name.end(), '_', '-');
  return "pkg:pypi/" + common::url_escape(name) + "@" + common::url_escape(wheel.version);
}

std::string spdx_sbom(const std::vector<conda::PackageRecord>& records, const SbomInfo& info,
                      const std::vector<pypi::WheelToInstall>& wheels) {
  using nlohmann::json;
  std::string identity = info.name + "\n" + info.image_digest + "\n";
  for (const auto& r : records) identity += r.url + "#" + r.sha256 + "\n";
  for (const auto& w : wheels) identity += w.url + "#" + w.sha256 + "\n";
  json doc = {
      {"spdxVersion", "SPDX-2.3"},
      {"dataLicense", "CC0-1.0"},
      {"SPDXID", "SPDXRef-DOCUMENT"},
      {"name", info.name.empty() ? std::string("conda-environment") : info.name},
      {"documentNamespace",
       "https://envbuild.dev/spdx/" + common::sha256_hex(identity)},
      {"creationInfo",
       {{"created", info.created.empty() ? std::string("1970-01-01T00:00:00Z") : info.created},
        {"creators", json::array({std::string("Tool: envbuild-") + kVersion})}}},
  };
  if (!info.image_digest.empty())
    doc["comment"] = "conda packages of image " + info.name + "@" + info.image_digest;
  json packages = json::array();
  json relationships = json::array();
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    json p = {{"SPDXID", spdx_id(i, r.name)},
              {"name", r.name},
              {"versionInfo", r.version.to_string()},
              {"downloadLocation", r.url.empty() ? std::string("NOASSERTION") : r.url},
              {"filesAnalyzed", false},
              {"licenseConcluded", "NOASSERTION"},
              {"copyrightText", "NOASSERTION"},
              {"supplier", "NOASSERTION"},
              {"comment", "conda build " + r.build + (r.channel.empty() ? "" : ", channel " + r.channel)},
              {"externalRefs",
               json::array({{{"referenceCategory", "PACKAGE-MANAGER"},
                             {"referenceType", "purl"},
                             {"referenceLocator", conda_purl(r)}}})}};
    if (looks_like_spdx_expression(r.license)) {
      p["licenseDeclared"] = r.license;
    } else {
      p["licenseDeclared"] = "NOASSERTION";
      if (!r.license.empty()) p["licenseComments"] = "conda license field: " + r.license;
    }
    json checksums = json::array();
    if (!r.sha256.empty()) checksums.push_back({{"algorithm", "SHA256"}, {"checksumValue", r.sha256}});
    if (!r.md5.empty()) checksums.push_back({{"algorithm", "MD5"}, {"checksumValue", r.md5}});
    if (!checksums.empty()) p["checksums"] = checksums;
    packages.push_back(std::move(p));
    relationships.push_back({{"spdxElementId", "SPDXRef-DOCUMENT"},
                             {"relationshipType", "DESCRIBES"},
                             {"relatedSpdxElement", spdx_id(i, r.name)}});
  }
  for (size_t i = 0; i < wheels.size(); ++i) {
    const auto& w = wheels[i];
    std::string id = "SPDXRef-Package-pypi-" + std::to_string(i) + "-";
    for (char c : w.name) id += id_char(c) ? c : '-';
    json p = {{"SPDXID", id},
              {"name", w.name},
              {"versionInfo", w.version},
              {"downloadLocation", common::redact_url(w.url)},
              {"filesAnalyzed", false},
              {"licenseConcluded", "NOASSERTION"},
              {"licenseDeclared", "NOASSERTION"},
              {"copyrightText", "NOASSERTION"},
              {"supplier", "NOASSERTION"},
              {"comment", "wheel " + w.filename},
              {"checksums", json::array({{{"algorithm", "SHA256"}, {"checksumValue", w.sha256}}})},
              {"externalRefs",
               json::array({{{"referenceCategory", "PACKAGE-MANAGER"},
                             {"referenceType", "purl"},
                             {"referenceLocator", pypi_purl(w)}}})}};
    packages.push_back(std::move(p));
    relationships.push_back({{"spdxElementId", "SPDXRef-DOCUMENT"},
                             {"relationshipType", "DESCRIBES"},
                             {"relatedSpdxElement", id}});
  }
  doc["packages"] = std::move(packages);
  doc["relationships"] = std::move(relationships);
  return doc.dump(2) + "\n";
}

}  // namespace envbuild::builder
