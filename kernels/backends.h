// The compute backends compiled into this build of tok1d.
#pragma once

#include <string_view>
#include <vector>

namespace tok1d {

// Names in order of preference for `--device auto`; "cpu" is always present.
std::vector<std::string_view> CompiledBackends();

}  // namespace tok1d
