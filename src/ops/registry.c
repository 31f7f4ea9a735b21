// The op name table, generated from ops.def.
#include "ops/ops_impl.h"

static const nb_op *const op_table[] = {
#define X(name) &nb_op_##name,
#include "ops/ops.def"
#undef X
};

int nb_op_count(void) {
    return (int)(sizeof op_table / sizeof op_table[0]);
}

const char *nb_op_name(int i) {
    return (i >= 0 && i < nb_op_count()) ? op_table[i]->name : NULL;
}

const char *nb_op_first_order_reason(int i) {
    if (i < 0 || i >= nb_op_count() || op_table[i]->vjp)
        return NULL;
    return op_table[i]->first_order_only ? op_table[i]->first_order_only : "no vjp";
}
