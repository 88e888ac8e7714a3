#include <gtest/gtest.h>

TEST(Placeholdererror_diffusion, Builds) { SUCCEED(); }
