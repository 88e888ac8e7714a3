// ditherd: the whole system in one process (embedded mode). Configuration: README.md.
#include "app/main_support.h"

int main() { return dither::run_main(dither::Roles{}); }
