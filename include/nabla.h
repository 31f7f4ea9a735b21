// nabla: reverse-mode automatic differentiation in C. Include this one header.
#ifndef NABLA_H
#define NABLA_H

#include "nabla/base.h"
#include "nabla/tensor.h"
#include "nabla/graph.h"
#include "nabla/ops.h"
#include "nabla/optim.h"
#include "nabla/data.h"
#include "nabla/io.h"

#endif
