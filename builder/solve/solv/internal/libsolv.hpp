#pragma once

// The only header that includes libsolv. C++20 makes `requires` a keyword, and libsolv's
// Solvable has a field of that name unless LIBSOLV_SOLVABLE_PREPEND_DEP renames the fields to
// dep_requires, dep_provides, ... (an official switch since 0.7.x).
#define LIBSOLV_SOLVABLE_PREPEND_DEP 1

extern "C" {
#include <solv/pool.h>
// conda.h uses Pool/Solvable without including their headers.
#include <solv/conda.h>
#include <solv/evr.h>
#include <solv/poolarch.h>
#include <solv/problems.h>
#include <solv/repo.h>
#include <solv/repo_conda.h>
#include <solv/repo_solv.h>
#include <solv/repo_write.h>
#include <solv/selection.h>
#include <solv/solver.h>
#include <solv/solverdebug.h>
#include <solv/transaction.h>
}
