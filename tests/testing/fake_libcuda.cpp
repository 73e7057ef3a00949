#include "tests/testing/fake_libcuda.hpp"

#include <string>

namespace envbuild::testing {

CommandResult build_fake_libcuda(const std::filesystem::path& lib, const FakeLibcuda& fake) {
  std::string source = "#include <stdio.h>\n";
  if (!fake.mark.empty())
    source += "__attribute__((constructor)) static void loaded(void){FILE*f=fopen(\"" +
              fake.mark.string() + "\",\"w\");if(f)fclose(f);}\n";
  source += "int cuInit(unsigned f){(void)f;return " + std::to_string(fake.init_fails ? 100 : 0) +
            ";}\n";
  if (fake.version)
    source += "int cuDriverGetVersion(int*v){*v=" + std::to_string(*fake.version) +
              ";return 0;}\n";
  source += "int cuDeviceGetCount(int*c){*c=" + std::to_string(fake.devices) +
            ";return 0;}\n"
            "int cuDeviceGet(int*d,int i){*d=i;return 0;}\n"
            "int cuDeviceGetAttribute(int*v,int a,int d){*v=(a==75)?8+d:(a==76?6:0);"
            "return 0;}\n";
  const std::filesystem::path src = lib.string() + ".c";
  write_text(src, source);
  return run_command("cc -shared -fPIC -o " + q(lib) + " " + q(src));
}

}  // namespace envbuild::testing
