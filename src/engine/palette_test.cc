#include <gtest/gtest.h>

TEST(Placeholderpalette, Builds) { SUCCEED(); }
