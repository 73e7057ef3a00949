#pragma once

// SPDX 2.3 JSON software bill of materials for the conda packages and wheels of an image: one
// package per record (name, version, build, channel URL, sha256, declared license,
// pkg:conda purl) and per wheel (name, version, URL, sha256, pkg:pypi purl), described by the
// document. Deterministic: the same records, wheels and image give the same bytes.

#include <string>
#include <vector>

#include "builder/pypi/wheel_install.hpp"
#include "conda/package_record.hpp"

namespace envbuild::builder {

struct SbomInfo {
  std::string name;     // the image ("registry/app:1.0"); the document's name
  std::string created;  // RFC 3339, the image's `created`
  std::string image_digest;  // manifest digest, when known (recorded in the namespace)
};

/// The SPDX document as pretty JSON text.
std::string spdx_sbom(const std::vector<conda::PackageRecord>& records, const SbomInfo& info,
                      const std::vector<pypi::WheelToInstall>& wheels = {});

/// pkg:pypi/<name>@<version> (the purl spec's pypi type: lowercase, '_' as '-').
std::string pypi_purl(const pypi::WheelToInstall& wheel);

/// pkg:conda/<name>@<version>?build=..&channel=..&subdir=..&type=conda|tar.bz2
std::string conda_purl(const conda::PackageRecord& record);

/// True when `license` reads as an SPDX license expression (ids joined by AND/OR/WITH, with
/// parentheses); conda's free-form licenses ("MIT License", "BSD") do not.
bool looks_like_spdx_expression(const std::string& license);

}  // namespace envbuild::builder
