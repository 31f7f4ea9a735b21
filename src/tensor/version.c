// nb_version: the library's own version, compiled in from the generated nabla/version.h.
#include "nabla/version.h"

const char *nb_version(void) {
    return NABLA_VERSION_STRING;
}

int nb_version_number(void) {
    return NABLA_VERSION_NUMBER;
}
