#ifndef TOK1D_COMMON_TEXT_FORMAT_H_
#define TOK1D_COMMON_TEXT_FORMAT_H_

#include <cstdint>
#include <string>

namespace tok1d {

// "3.1416" for (3.14159, 4): fixed notation, for messages and tables.
std::string FormatFixed(double value, int decimals);

// "1 byte", "2048 bytes": sizes in messages, exact (no KiB rounding), as cwebp prints them.
std::string FormatBytes(uint64_t bytes);

}  // namespace tok1d

#endif  // TOK1D_COMMON_TEXT_FORMAT_H_
