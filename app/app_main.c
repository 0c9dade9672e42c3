/* app_main.c - the `ragfeed` program: everything happens in rf_app_main(), which the
 * tests can reach through the static library. */
#include "app/app_int.h"

int main(int argc, char **argv)
{
    return rf_app_main(argc, argv);
}
