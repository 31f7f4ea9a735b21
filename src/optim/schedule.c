// Learning-rate schedules as pure functions of the step (closed forms of PyTorch's StepLR,
// MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR warmup in a SequentialLR, and
// OneCycleLR with cosine annealing), and reduce-on-plateau as a small state machine
// (ReduceLROnPlateau, threshold_mode "rel").
#include <math.h>

#include "optim/optim_impl.h"
#include "base/base_impl.h"

#define PI 3.14159265358979323846

static double warmup_start(const nb_schedule *s) {
    return s->warmup_start > 0 ? s->warmup_start : 1.0 / 3.0;
}
static double pct_start(const nb_schedule *s) {
    return s->pct_start > 0 ? s->pct_start : 0.3;
}
static double div_factor(const nb_schedule *s) {
    return s->div_factor > 0 ? s->div_factor : 25.0;
}
static double final_div(const nb_schedule *s) {
    return s->final_div_factor > 0 ? s->final_div_factor : 1e4;
}

nb_status nb_schedule_check(const nb_schedule *s) {
    const char *who = "nb_schedule_check";
    if (!s)
        return nb__set_last_error(NB_ERR_NULL, "%s: schedule is NULL", who);
    if ((unsigned)s->kind >= NB_SCHED_KIND_COUNT)
        return nb__set_last_error(NB_ERR_ARG, "%s: unknown kind %d", who, (int)s->kind);
    if (!(s->lr >= 0 && isfinite(s->lr)))
        return nb__set_last_error(NB_ERR_ARG, "%s: lr must be finite and >= 0, got %g", who, s->lr);
    if (s->warmup < 0 || !(s->warmup_start >= 0 && s->warmup_start <= 1))
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: warmup must be >= 0 steps (got %lld) and warmup_start in "
                                  "[0, 1] (got %g)",
                                  who, (long long)s->warmup, s->warmup_start);
    bool decays = s->kind == NB_SCHED_STEP || s->kind == NB_SCHED_MULTISTEP ||
                  s->kind == NB_SCHED_EXPONENTIAL;
    if (decays && !(s->gamma > 0 && isfinite(s->gamma)))
        return nb__set_last_error(NB_ERR_ARG, "%s: gamma must be finite and > 0, got %g", who,
                                  s->gamma);
    if (s->kind == NB_SCHED_STEP && s->step_size < 1)
        return nb__set_last_error(NB_ERR_ARG, "%s: step_size must be >= 1, got %lld", who,
                                  (long long)s->step_size);
    if (s->kind == NB_SCHED_MULTISTEP) {
        if (s->n_milestones < 0 || s->n_milestones > NB_SCHED_MAX_MILESTONES)
            return nb__set_last_error(NB_ERR_ARG, "%s: n_milestones must be in [0, %d], got %d",
                                      who, NB_SCHED_MAX_MILESTONES, s->n_milestones);
        for (int i = 1; i < s->n_milestones; i++)
            if (s->milestones[i] <= s->milestones[i - 1])
                return nb__set_last_error(NB_ERR_ARG, "%s: milestones must increase", who);
    }
    if (s->kind == NB_SCHED_COSINE || s->kind == NB_SCHED_ONECYCLE) {
        if (s->total <= s->warmup || (s->kind == NB_SCHED_ONECYCLE && s->total < 2))
            return nb__set_last_error(NB_ERR_ARG,
                                      "%s: total (%lld steps) must exceed warmup (%lld)%s", who,
                                      (long long)s->total, (long long)s->warmup,
                                      s->kind == NB_SCHED_ONECYCLE ? " and be >= 2" : "");
        if (!(s->min_lr >= 0 && s->min_lr <= s->lr))
            return nb__set_last_error(NB_ERR_ARG, "%s: min_lr must be in [0, lr], got %g", who,
                                      s->min_lr);
    }
    if (s->kind == NB_SCHED_ONECYCLE) {
        if (s->warmup != 0)
            return nb__set_last_error(NB_ERR_ARG,
                                      "%s: one-cycle has its own warm phase (pct_start); set "
                                      "warmup to 0",
                                      who);
        if (!(s->pct_start >= 0 && s->pct_start < 1) || s->div_factor < 0 ||
            s->final_div_factor < 0)
            return nb__set_last_error(
                NB_ERR_ARG, "%s: one-cycle needs pct_start in [0, 1) and factors >= 0", who);
        double up = pct_start(s) * (double)s->total - 1;
        if (!(up > 0 && up < (double)s->total - 1))
            return nb__set_last_error(NB_ERR_ARG,
                                      "%s: pct_start %g of %lld steps leaves an empty phase", who,
                                      pct_start(s), (long long)s->total);
    }
    return NB_OK;
}

// OneCycleLR, two phases, cosine annealing: end + (start - end) / 2 (cos(π pct) + 1).
static double one_cycle(const nb_schedule *s, int64_t t) {
    double initial = s->lr / div_factor(s), final = initial / final_div(s);
    double end1 = pct_start(s) * (double)s->total - 1, end2 = (double)s->total - 1;
    double step = (double)(t < s->total - 1 ? t : s->total - 1);
    double start, end, pct;
    if (step <= end1)
        start = initial, end = s->lr, pct = step / end1;
    else
        start = s->lr, end = final, pct = (step - end1) / (end2 - end1);
    return end + (start - end) / 2.0 * (cos(PI * pct) + 1);
}

double nb_schedule_lr(const nb_schedule *s, int64_t t) {
    if (nb_schedule_check(s) != NB_OK || t < 0)
        return NAN;
    if (s->kind == NB_SCHED_ONECYCLE)
        return one_cycle(s, t);
    if (t < s->warmup) { // LinearLR: lr (f + (1 - f) t / W)
        double f = warmup_start(s);
        return s->lr * (f + (1 - f) * (double)t / (double)s->warmup);
    }
    t -= s->warmup;
    switch (s->kind) {
    case NB_SCHED_STEP:
        return s->lr * pow(s->gamma, (double)(t / s->step_size));
    case NB_SCHED_MULTISTEP: {
        int passed = 0;
        while (passed < s->n_milestones && s->milestones[passed] <= t)
            passed++;
        return s->lr * pow(s->gamma, passed);
    }
    case NB_SCHED_EXPONENTIAL:
        return s->lr * pow(s->gamma, (double)t);
    case NB_SCHED_COSINE: {
        int64_t span = s->total - s->warmup;
        if (t >= span)
            return s->min_lr;
        return s->min_lr + (s->lr - s->min_lr) * (1 + cos(PI * (double)t / (double)span)) / 2;
    }
    default:
        return s->lr;
    }
}

// ---- reduce on plateau --------------------------------------------------------------------------

nb_status nb_plateau_init(nb_plateau *p, double lr) {
    const char *who = "nb_plateau_init";
    if (!p)
        return nb__set_last_error(NB_ERR_NULL, "%s: plateau is NULL", who);
    if (p->factor == 0)
        p->factor = 0.1;
    if (p->eps == 0)
        p->eps = 1e-8;
    if (!(p->factor > 0 && p->factor < 1))
        return nb__set_last_error(NB_ERR_ARG, "%s: factor must be in (0, 1), got %g", who,
                                  p->factor);
    if (p->patience < 0 || p->cooldown < 0 || !(p->threshold >= 0 && isfinite(p->threshold)) ||
        !(p->min_lr >= 0 && isfinite(p->min_lr)) || !(p->eps > 0))
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: patience, cooldown, threshold, min_lr must be >= 0 and eps "
                                  "> 0",
                                  who);
    if (!(lr >= 0 && isfinite(lr)))
        return nb__set_last_error(NB_ERR_ARG, "%s: lr must be finite and >= 0, got %g", who, lr);
    p->lr = lr;
    p->best = p->maximize ? -INFINITY : INFINITY;
    p->num_bad_epochs = 0;
    p->cooldown_counter = 0;
    p->epochs = 0;
    return NB_OK;
}

double nb_plateau_step(nb_plateau *p, double metric) {
    if (!p)
        return NAN;
    p->epochs++;
    bool better =
        p->maximize ? metric > p->best * (1 + p->threshold) : metric < p->best * (1 - p->threshold);
    if (better) {
        p->best = metric;
        p->num_bad_epochs = 0;
    } else {
        p->num_bad_epochs++;
    }
    if (p->cooldown_counter > 0) {
        p->cooldown_counter--;
        p->num_bad_epochs = 0;
    }
    if (p->num_bad_epochs > p->patience) {
        double lr = p->lr * p->factor > p->min_lr ? p->lr * p->factor : p->min_lr;
        if (p->lr - lr > p->eps)
            p->lr = lr;
        p->cooldown_counter = p->cooldown;
        p->num_bad_epochs = 0;
    }
    return p->lr;
}
