/*
 * qemu TCG plugin: count the guest instructions a process executes.
 *
 *   qemu-aarch64 -plugin insn_count.so,out=/path/counts.txt PROGRAM ...
 *
 * The guest marks points in its run with lseek(-1, MARK_OFFSET, SEEK_SET) (a syscall that only
 * fails with EBADF, so the marker costs nothing else); the running count at each mark goes to
 * the output file as "mark N" lines, followed by "total N" at exit. The difference between two
 * marks is then the exact number of instructions between them, however noisy the process's
 * start-up is (onnxruntime's import varies by millions of instructions from run to run).
 * Each mark is written and flushed as it happens, so a long-running guest that counts many
 * files (insn_count_server.py) can be read while it runs; the file is the same at exit.
 *
 * Built by shufflenet_edge/bench/targets/qemu.py with gcc on first use. Debian's qemu packages
 * do not install qemu-plugin.h (debian/not-installed lists it), so when the header is missing
 * the few declarations used here are spelled out below: those of plugin API version 1
 * (qemu 4.2 .. 8.x); every call used keeps its signature in later versions.
 *
 * Counting: each translated block registers one execution callback that adds the block's
 * instruction count, exact for blocks that run to their end (a fault inside a block would
 * over-count its tail, which a benchmark loop does not do).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<qemu-plugin.h>)
#define HAVE_QEMU_PLUGIN_H 1
#include <qemu-plugin.h>
#endif
#endif

#ifndef HAVE_QEMU_PLUGIN_H
#include <stdbool.h>
#include <stddef.h>
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
#define QEMU_PLUGIN_VERSION 1
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* not read: opaque here */
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                                              uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                              uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
#endif

#define AARCH64_NR_LSEEK 62
#define MARK_OFFSET 0x45444745u /* "EDGE"; insn_count_guest.py uses the same value */

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static uint64_t total; /* shared by all vCPU threads: updated atomically */
static FILE *out;      /* stdio locks the stream: marks from several threads stay whole lines */

static void on_exec(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    __atomic_fetch_add(&total, (uint64_t)(uintptr_t)userdata, __ATOMIC_RELAXED);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)(uintptr_t)qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id, (void)vcpu_index, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
    if (num == AARCH64_NR_LSEEK && (int32_t)a1 == -1 && a2 == MARK_OFFSET && a3 == 0) {
        /* host code: the guest's count does not move while the line is written */
        fprintf(out, "mark %" PRIu64 "\n", __atomic_load_n(&total, __ATOMIC_RELAXED));
        fflush(out);
    }
}

static void on_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    fprintf(out, "total %" PRIu64 "\n", __atomic_load_n(&total, __ATOMIC_RELAXED));
    fclose(out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    char out_path[4096] = "";

    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0 && strlen(argv[i] + 4) < sizeof(out_path)) {
            strcpy(out_path, argv[i] + 4);
        }
    }
    if (!out_path[0]) {
        fprintf(stderr, "insn_count: missing argument out=FILE\n");
        return -1;
    }
    out = fopen(out_path, "w");
    if (!out) {
        fprintf(stderr, "insn_count: cannot write %s\n", out_path);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
