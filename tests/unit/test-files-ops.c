#include "test.h"
TEST(placeholder){}
