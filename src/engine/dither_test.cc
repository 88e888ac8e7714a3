#include <gtest/gtest.h>

TEST(Placeholderdither, Builds) { SUCCEED(); }
