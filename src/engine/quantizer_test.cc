#include <gtest/gtest.h>

TEST(Placeholderquantizer, Builds) { SUCCEED(); }
