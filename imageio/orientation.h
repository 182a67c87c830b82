// EXIF orientation (TIFF tag 0x0112 in IFD0): how the stored pixels are turned for display.
// Cameras and phones store the sensor's rows as read out and record the turn in this tag;
// viewers apply it, so tok1d does too (ImageReadOptions::apply_orientation) and then sets the
// tag to 1 in the EXIF it keeps, so that nothing turns the image a second time.
//
// Values (EXIF 2.32, 4.6.4 A, as "0th row – 0th column" of the stored image, seen upright):
//   1 top–left (as stored)        5 left–top (transposed)
//   2 top–right (mirrored)        6 right–top (stored turned 90° anticlockwise: turn clockwise)
//   3 bottom–right (turned 180°)  7 right–bottom (transversed)
//   4 bottom–left (flipped)       8 left–bottom (stored turned 90° clockwise: turn anticlockwise)
#pragma once

#include <cstdint>
#include <span>

#include "tok1d/image.h"

namespace tok1d {

// The orientation (1..8) recorded in EXIF bytes that start with a TIFF header ("II*\0" or
// "MM\0*"), after an optional "Exif\0\0" prefix (JPEG APP1, some WebP files). 0 when there is
// no orientation tag in IFD0, its value is outside 1..8, or the bytes are not sound enough to
// find it. Never reads outside `exif`.
uint32_t ExifOrientation(std::span<const uint8_t> exif);

// Sets the orientation tag that ExifOrientation reads to 1 ("as stored"), in place, keeping
// its type and every other byte. Returns false (and changes nothing) when there is none.
bool ResetExifOrientation(std::span<uint8_t> exif);

// Turns and/or mirrors `image` (stored with EXIF orientation `orientation`) so that it is
// upright; width and height swap for 5..8. Values other than 2..8 leave it as it is.
void OrientUpright(uint32_t orientation, Image* image);

}  // namespace tok1d
