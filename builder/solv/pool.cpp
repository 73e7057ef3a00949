#include "builder/solv/pool.hpp"

#include <algorithm>
#include <cstdio>

#include "builder/solv/internal/libsolv.hpp"

namespace envbuild::builder::solv {

namespace {
struct PoolFree {
  void operator()(::Pool* pool) const { pool_free(pool); }
};
struct SolverFree {
  void operator()(::Solver* solver) const { solver_free(solver); }
};
struct TransactionFree {
  void operator()(::Transaction* t) const { transaction_free(t); }
};
struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};

/// RAII for a libsolv Queue.
class Queue {
 public:
  Queue() { queue_init(&q_); }
  ~Queue() { queue_free(&q_); }
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;
  ::Queue* raw() { return &q_; }
  void push2(Id a, Id b) { queue_push2(&q_, a, b); }
  [[nodiscard]] int size() const { return q_.count; }
  Id operator[](int i) const { return q_.elements[i]; }

 private:
  ::Queue q_;
};
}  // namespace

struct Pool::Impl {
  std::unique_ptr<::Pool, PoolFree> pool;
  ::Repo* virtual_repo = nullptr;  // owned by the pool
};

Pool::Pool() : impl_(std::make_unique<Impl>()) {
  impl_->pool.reset(pool_create());
  ENVB_CHECK(impl_->pool != nullptr);
  pool_setdisttype(impl_->pool.get(), DISTTYPE_CONDA);
  // Conda solvables carry no arch: setting one (e.g. "noarch") makes every job resolve to nothing.
}
Pool::~Pool() = default;
Pool::Pool(Pool&&) noexcept = default;
Pool& Pool::operator=(Pool&&) noexcept = default;

Result<void> Pool::add_repodata_json(const std::string& name, const std::string& json,
                                     int priority) {
  std::unique_ptr<FILE, FileClose> fp(fmemopen(const_cast<char*>(json.data()), json.size(), "r"));
  if (!fp) return fail(Errc::Internal, "fmemopen failed for repodata of " + name);
  ::Repo* repo = repo_create(impl_->pool.get(), name.c_str());
  repo->priority = priority;
  if (repo_add_conda(repo, fp.get(), 0) != 0) {
    std::string why = pool_errstr(impl_->pool.get());
    repo_free(repo, 1);
    return fail(Errc::InvalidInput, "repodata of " + name + ": " + why);
  }
  repo_internalize(repo);
  return ok();
}

Result<void> Pool::add_repodata_file(const std::string& name, const std::string& path,
                                     int priority) {
  std::unique_ptr<FILE, FileClose> fp(std::fopen(path.c_str(), "r"));
  if (!fp) return fail(Errc::NotFound, "open(" + path + "): no such repodata file");
  ::Repo* repo = repo_create(impl_->pool.get(), name.c_str());
  repo->priority = priority;
  if (repo_add_conda(repo, fp.get(), 0) != 0) {
    std::string why = pool_errstr(impl_->pool.get());
    repo_free(repo, 1);
    return fail(Errc::InvalidInput, path + ": " + why);
  }
  repo_internalize(repo);
  return ok();
}

void Pool::add_virtual_package(const std::string& name, const std::string& version,
                               const std::string& build) {
  ::Pool* pool = impl_->pool.get();
  if (!impl_->virtual_repo) impl_->virtual_repo = repo_create(pool, "__virtual__");
  ::Repo* repo = impl_->virtual_repo;
  Id id = repo_add_solvable(repo);
  ::Solvable* s = pool_id2solvable(pool, id);
  s->name = pool_str2id(pool, name.c_str(), 1);
  s->evr = pool_str2id(pool, version.c_str(), 1);
  repodata_set_str(repo_last_repodata(repo), id, SOLVABLE_BUILDFLAVOR, build.c_str());
  s->dep_provides =
      repo_addid_dep(repo, s->dep_provides, pool_rel2id(pool, s->name, s->evr, REL_EQ, 1), 0);
  repo_internalize(repo);
}

Result<SolveOutcome> Pool::solve(const std::vector<std::string>& specs) {
  ::Pool* pool = impl_->pool.get();
  pool_addfileprovides(pool);
  pool_createwhatprovides(pool);

  Queue jobs;
  for (const std::string& spec : specs) {
    Id dep = pool_conda_matchspec(pool, spec.c_str());
    if (!dep) return fail(Errc::InvalidInput, "libsolv could not parse match spec '" + spec + "'");
    jobs.push2(SOLVER_INSTALL | SOLVER_SOLVABLE_PROVIDES, dep);
  }

  std::unique_ptr<::Solver, SolverFree> solver(solver_create(pool));
  solver_set_flag(solver.get(), SOLVER_FLAG_ALLOW_DOWNGRADE, 1);
  if (solver_solve(solver.get(), jobs.raw()) != 0) {
    Conflict conflict;
    int count = solver_problem_count(solver.get());
    for (Id problem = 1; problem <= count; ++problem)
      conflict.problems.emplace_back(solver_problem2str(solver.get(), problem));
    return SolveOutcome(std::move(conflict));
  }

  std::unique_ptr<::Transaction, TransactionFree> trans(solver_create_transaction(solver.get()));
  Queue installed;
  transaction_installedresult(trans.get(), installed.raw());
  std::vector<SolvedPackage> out;
  for (int i = 0; i < installed.size(); ++i) {
    ::Solvable* s = pool_id2solvable(pool, installed[i]);
    if (s->repo == impl_->virtual_repo) continue;
    const char* build = solvable_lookup_str(s, SOLVABLE_BUILDFLAVOR);
    out.push_back(SolvedPackage{pool_id2str(pool, s->name), pool_id2str(pool, s->evr),
                                build ? build : "", s->repo->name ? s->repo->name : ""});
  }
  std::sort(out.begin(), out.end());
  return SolveOutcome(std::move(out));
}

}  // namespace envbuild::builder::solv
