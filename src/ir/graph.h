/*
 * kiln graph IR.
 *
 * A graph is two arrays: values (tensors: graph inputs, constants, intermediate results) and nodes
 * (one ONNX-level op each). Nodes refer to values by index, values to their producer node by index,
 * so passes can rewrite the graph without pointer chasing or dangling pointers. Every op comes from
 * the single op table (op_table.h); its attributes are kept generically (for export) and parsed into
 * a typed parameter struct of the op's family (ops/<family>.h) for everything else.
 *
 * Ownership: the graph owns every string, array, attribute and constant buffer it holds.
 */
#ifndef KILN_IR_GRAPH_H
#define KILN_IR_GRAPH_H

#include "core/status.h"
#include "ir/ops.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KILN_MAX_RANK 8
#define KILN_DIM_DYNAMIC (-1) /* a dim whose size is not known at build time */
/* Refuse tensors beyond this many elements (2^40): catches absurd dims before any allocation. */
#define KILN_MAX_ELEMENTS (INT64_C(1) << 40)

typedef struct kiln_shape {
  int32_t rank;                /* -1: rank unknown */
  int64_t dims[KILN_MAX_RANK]; /* >= 0: static size; KILN_DIM_DYNAMIC: unknown */
  int32_t sym[KILN_MAX_RANK];  /* for dynamic dims: index into graph->symbols, or -1 (anonymous) */
} kiln_shape;

/* A dense tensor view: what folding and the reference kernels compute on. */
typedef struct kiln_tensor {
  kiln_dtype dtype;
  int32_t rank;
  int64_t dims[KILN_MAX_RANK];
  void *data;
} kiln_tensor;

enum {
  KILN_VALUE_GRAPH_INPUT = 1u << 0,
  KILN_VALUE_GRAPH_OUTPUT = 1u << 1,
  KILN_VALUE_INITIALIZER = 1u << 2, /* came from an initializer (or was folded into a constant) */
};

typedef struct kiln_value {
  char *name;
  kiln_dtype dtype; /* KILN_DTYPE_UNDEFINED until known */
  kiln_shape shape;
  void *data;       /* constant contents (owned, dense, row-major) or NULL */
  size_t nbytes;
  uint32_t flags;
  int32_t producer; /* node index, or -1 */
} kiln_value;

/* Attribute kinds: numbering follows ONNX AttributeProto.AttributeType. */
typedef enum kiln_attr_type {
  KILN_ATTR_UNDEFINED = 0,
  KILN_ATTR_FLOAT = 1,
  KILN_ATTR_INT = 2,
  KILN_ATTR_STRING = 3,
  KILN_ATTR_TENSOR = 4,
  KILN_ATTR_GRAPH = 5,
  KILN_ATTR_FLOATS = 6,
  KILN_ATTR_INTS = 7,
  KILN_ATTR_STRINGS = 8,
  KILN_ATTR_TENSORS = 9,
  KILN_ATTR_GRAPHS = 10,
  KILN_ATTR_SPARSE_TENSOR = 11,
  KILN_ATTR_SPARSE_TENSORS = 12,
  KILN_ATTR_TYPE_PROTO = 13,
  KILN_ATTR_TYPE_PROTOS = 14,
} kiln_attr_type;

/* One attribute. Sparse tensors are densified at import and stored as KILN_ATTR_TENSOR with
 * `was_sparse` set. Subgraphs and type protos are not kept (only If/Loop/Scan use them, and those
 * are refused), so for them only the kind and `count` are recorded. */
typedef struct kiln_attr {
  char *name;
  kiln_attr_type type;
  int64_t i;
  float f;
  char *s;         /* STRING: bytes, NUL-terminated, length s_len */
  size_t s_len;
  size_t count;    /* element count for the list kinds */
  int64_t *ints;
  float *floats;
  char **strings;
  kiln_tensor *tensors; /* TENSOR (count 1) / TENSORS; each data buffer is owned */
  bool was_sparse;
} kiln_attr;

typedef struct kiln_node {
  char *name;
  char *op_type; /* as written in the model (kept for unknown/plugin ops and export) */
  char *domain;  /* "" for the default ONNX domain */
  kiln_op op;    /* KILN_OP_UNKNOWN if not in the op table */
  int32_t n_inputs, n_outputs;
  int32_t *inputs;  /* value indices; -1 marks an omitted optional input */
  int32_t *outputs; /* value indices; -1 marks an omitted optional output */
  int32_t n_attrs;
  kiln_attr *attrs;
  void *params;     /* typed parameters (ops/<family>.h), parsed from attrs; owned; may be NULL */
  void (*free_params)(void *params); /* NULL means free() */
  bool dead;        /* removed; compacted away by kiln_graph_compact() */
} kiln_node;

typedef struct kiln_opset {
  char *domain;
  int64_t version;
} kiln_opset;

typedef struct kiln_network kiln_graph; /* the public kiln_network handle is the graph */

struct kiln_network {
  kiln_value *values;
  int32_t n_values, cap_values;
  kiln_node *nodes;
  int32_t n_nodes, cap_nodes;
  int32_t *inputs, n_inputs;   /* graph inputs (value indices), in model order */
  int32_t *outputs, n_outputs; /* graph outputs */
  char **symbols;              /* names of symbolic dims ("batch", "N", ...) */
  int32_t n_symbols;
  kiln_opset *opsets;
  int32_t n_opsets;
  int64_t opset;               /* version of the default ONNX domain */
  int64_t ir_version;
  int64_t model_version;
  char *name, *producer_name, *producer_version, *domain, *doc;
  /* name -> value index, open addressing; rebuilt on demand */
  int32_t *index;
  uint32_t index_cap;
  int32_t unique_counter; /* for fresh value/node names */
};

/* ---- graph ---------------------------------------------------------------------------------------- */
kiln_status kiln_graph_create(kiln_graph **out);
void kiln_graph_destroy(kiln_graph *g);

/* Values. Names are unique; kiln_graph_add_value fails if the name exists. name == NULL or "" makes a
 * fresh name from `hint` ("<hint>_kiln<N>"). */
kiln_status kiln_graph_add_value(kiln_graph *g, const char *name, int32_t *out_id);
kiln_status kiln_graph_add_fresh_value(kiln_graph *g, const char *hint, int32_t *out_id);
int32_t kiln_graph_find_value(const kiln_graph *g, const char *name); /* -1 if absent */
kiln_status kiln_graph_rename_value(kiln_graph *g, int32_t id, const char *name);

/* Make value `id` a constant. Copies `data` (nbytes must equal shape elements * dtype size). */
kiln_status kiln_value_set_constant(kiln_graph *g, int32_t id, kiln_dtype dt, const kiln_shape *shape,
                                    const void *data);
/* Same, but takes ownership of a malloc'd buffer (freed on error too). */
kiln_status kiln_value_take_constant(kiln_graph *g, int32_t id, kiln_dtype dt, const kiln_shape *shape,
                                     void *data);
static inline bool kiln_value_is_constant(const kiln_value *v) { return v->data != NULL; }

/* Nodes. Inputs/outputs are value indices (-1 for omitted). op_type/domain resolve the op. The
 * node's attributes start empty; add them with kiln_node_add_attr_*. *out_id may be NULL. */
kiln_status kiln_graph_add_node(kiln_graph *g, const char *name, const char *domain, const char *op_type,
                                const int32_t *inputs, int32_t n_inputs, const int32_t *outputs,
                                int32_t n_outputs, int32_t *out_id);
/* Drop dead nodes and values that nothing refers to any more; keeps relative order. Invalidates
 * node indices (value indices too). */
kiln_status kiln_graph_compact(kiln_graph *g);
/* Recompute every value's producer from the nodes (after rewiring). */
void kiln_graph_update_producers(kiln_graph *g);
/* The number of live nodes that read value `id` (graph outputs count as one use). */
int32_t kiln_graph_count_uses(const kiln_graph *g, int32_t id);
/* Replace every use of value `from` (node inputs and graph outputs) by `to`. */
void kiln_graph_replace_uses(kiln_graph *g, int32_t from, int32_t to);
kiln_status kiln_graph_add_symbol(kiln_graph *g, const char *name, int32_t *out_id);

/* ---- shapes --------------------------------------------------------------------------------------- */
void kiln_shape_init(kiln_shape *s, int32_t rank, const int64_t *dims); /* dims may be NULL: all 0 */
void kiln_shape_unknown(kiln_shape *s);                                  /* rank -1 */
void kiln_shape_dynamic(kiln_shape *s, int32_t rank);                    /* known rank, all dims dynamic */
bool kiln_shape_is_static(const kiln_shape *s); /* rank known and all dims >= 0 */
int64_t kiln_shape_numel(const kiln_shape *s);  /* -1 if not static or overflows */
bool kiln_shape_equal(const kiln_shape *a, const kiln_shape *b); /* same rank/dims/symbols */
/* "1x3x640x640", "Nx84x8400" or "?" into buf. Returns buf. */
char *kiln_shape_format(const kiln_graph *g, const kiln_shape *s, char *buf, size_t len);
int64_t kiln_tensor_numel(const kiln_tensor *t);
size_t kiln_tensor_nbytes(const kiln_tensor *t);
/* A kiln_tensor view of a constant value (data aliases the value's buffer). */
void kiln_value_as_tensor(const kiln_value *v, kiln_tensor *out);

/* ---- attributes ----------------------------------------------------------------------------------- */
kiln_attr *kiln_node_find_attr(const kiln_node *n, const char *name);
/* Typed getters: absent -> default (count 0 for lists); present with the wrong kind -> error naming it. */
kiln_status kiln_node_get_int(const kiln_node *n, const char *name, int64_t def, int64_t *out);
kiln_status kiln_node_get_float(const kiln_node *n, const char *name, float def, float *out);
kiln_status kiln_node_get_string(const kiln_node *n, const char *name, const char *def, const char **out);
kiln_status kiln_node_get_ints(const kiln_node *n, const char *name, const int64_t **out, size_t *count);
kiln_status kiln_node_get_floats(const kiln_node *n, const char *name, const float **out, size_t *count);
kiln_status kiln_node_get_tensor(const kiln_node *n, const char *name, const kiln_tensor **out); /* NULL if absent */
/* Setters replace an attribute of the same name. */
kiln_status kiln_node_set_int(kiln_node *n, const char *name, int64_t v);
kiln_status kiln_node_set_float(kiln_node *n, const char *name, float v);
kiln_status kiln_node_set_string(kiln_node *n, const char *name, const char *s);
kiln_status kiln_node_set_ints(kiln_node *n, const char *name, const int64_t *v, size_t count);
kiln_status kiln_node_set_floats(kiln_node *n, const char *name, const float *v, size_t count);
kiln_status kiln_node_set_tensor(kiln_node *n, const char *name, const kiln_tensor *t); /* copies */
/* Replace the node's typed parameters (freeing the old ones, which parse may leave from an earlier run).
 * free_fn NULL means free(). */
void kiln_node_set_params(kiln_node *n, void *params, void (*free_fn)(void *));
/* Append a fully formed attribute (import uses this); takes ownership of *a's buffers. */
kiln_status kiln_node_append_attr(kiln_node *n, kiln_attr *a);
void kiln_node_remove_attr(kiln_node *n, const char *name);
void kiln_attr_free(kiln_attr *a);

/* ---- helpers for op families ---------------------------------------------------------------------- */
/* Input i's value (NULL if omitted or out of range). */
kiln_value *kiln_node_input(const kiln_graph *g, const kiln_node *n, int i);
kiln_value *kiln_node_output(const kiln_graph *g, const kiln_node *n, int i);
/* Read a constant integer tensor (any int dtype) of at most `max` elements. Error if not constant. */
kiln_status kiln_value_read_ints(const kiln_value *v, int64_t *out, int64_t max, int64_t *count);
kiln_status kiln_value_read_floats(const kiln_value *v, double *out, int64_t max, int64_t *count);

#endif
