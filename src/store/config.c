// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// config.c: load /etc/vfswatch/config.json with cJSON; every key checked for name, type and range.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/util.h"
#include "store/config.h"

#define CONFIG_MAX_BYTES (1 << 20)

struct cfg_ctx {
	const char *file;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static bool fail(struct cfg_ctx *c, const char *key, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: %s: %s", c->file, key, reason);
	return false;
}

static bool get_u64(struct cfg_ctx *c, const cJSON *v, const char *key, uint64_t min,
		    uint64_t max, uint64_t *out)
{
	char range[64];
	bool in_range;

	snprintf(range, sizeof(range), "%llu to %llu", (unsigned long long)min,
		 (unsigned long long)max);
	/* in range before the cast: a double outside uint64_t's does not convert (nor NaN) */
	in_range = cJSON_IsNumber(v) && v->valuedouble >= (double)min &&
		   v->valuedouble <= (double)max;
	if (!cJSON_IsNumber(v) || (in_range && v->valuedouble != (double)(uint64_t)v->valuedouble))
		return fail(c, key, "must be a whole number from %s", range);
	if (!in_range)
		return fail(c, key, "must be from %s", range);
	*out = (uint64_t)v->valuedouble;
	return true;
}

static bool get_str(struct cfg_ctx *c, const cJSON *v, const char *key, char **out)
{
	if (!cJSON_IsString(v) || !*v->valuestring)
		return fail(c, key, "must be a non-empty string");
	free(*out);
	*out = strdup(v->valuestring);
	return *out != NULL || fail(c, key, "out of memory");
}

static bool get_bool(struct cfg_ctx *c, const cJSON *v, const char *key, bool *out)
{
	if (!cJSON_IsBool(v))
		return fail(c, key, "must be true or false");
	*out = cJSON_IsTrue(v);
	return true;
}

/* Is @v's key used by an earlier member of @obj? JSON allows it; a config never means it. */
static bool given_twice(struct cfg_ctx *c, const cJSON *obj, const cJSON *v, const char *key)
{
	for (const cJSON *it = obj->child; it && it != v; it = it->next)
		if (strcmp(it->string, v->string) == 0)
			return fail(c, key, "given twice"), true;
	return false;
}

/* A NULL-terminated copy of an array of strings; an empty array is refused when @nonempty. */
static bool get_strv(struct cfg_ctx *c, const cJSON *v, const char *key, bool nonempty,
		     char ***out, size_t *n)
{
	const cJSON *it;
	size_t k = 0;

	if (!cJSON_IsArray(v) || (nonempty && cJSON_GetArraySize(v) == 0))
		return fail(c, key, "must be a%s array of strings", nonempty ? " non-empty" : "n");
	*out = calloc(cJSON_GetArraySize(v) + 1, sizeof(**out));
	if (!*out)
		return fail(c, key, "out of memory");
	cJSON_ArrayForEach(it, v) {
		if (!cJSON_IsString(it))
			return fail(c, key, "must hold strings only");
		if (!((*out)[k++] = strdup(it->valuestring)))
			return fail(c, key, "out of memory");
	}
	if (n)
		*n = k;
	return true;
}

static bool get_analyzer(struct cfg_ctx *c, const cJSON *o, const char *where,
			 struct vw_analyzer *a)
{
	char key[160];
	const cJSON *v;
	uint64_t u;

	a->events = VW_AN_EV(VW_KIND_CREATE) | VW_AN_EV(VW_KIND_MODIFY) | VW_AN_EV(VW_KIND_DELETE) |
		    VW_AN_EV(VW_KIND_RENAME);
	a->timeout_ms = 30000;
	a->retries = 2;
	a->concurrency = 1;
	a->retry_delay_ms = 200;
	if (!cJSON_IsObject(o))
		return fail(c, where, "must be an object");
	cJSON_ArrayForEach(v, o) {
		snprintf(key, sizeof(key), "%s.%s", where, v->string);
		if (given_twice(c, o, v, key))
			return false;
		if (strcmp(v->string, "name") == 0) {
			if (!get_str(c, v, key, &a->name))
				return false;
		} else if (strcmp(v->string, "match") == 0) {
			if (!get_strv(c, v, key, false, &a->match, &a->nmatch))
				return false;
		} else if (strcmp(v->string, "on_change") == 0) {
			if (!get_strv(c, v, key, true, &a->on_change, NULL))
				return false;
		} else if (strcmp(v->string, "on_delete") == 0) {
			if (!get_strv(c, v, key, true, &a->on_delete, NULL))
				return false;
		} else if (strcmp(v->string, "batch") == 0) {
			if (!get_strv(c, v, key, true, &a->batch, NULL))
				return false;
		} else if (strcmp(v->string, "events") == 0) {
			const cJSON *e;

			if (!cJSON_IsArray(v))
				return fail(c, key, "must be an array of event names");
			a->events = 0;
			cJSON_ArrayForEach(e, v) {
				const char *n = cJSON_IsString(e) ? e->valuestring : "";

				enum vw_kind k = kind_parse(n);

				if (k != VW_KIND_CREATE && k != VW_KIND_MODIFY && k != VW_KIND_DELETE &&
				    k != VW_KIND_RENAME)
					return fail(c, key, "'%s' is not one of create, modify, delete, "
							    "rename", n);
				a->events |= VW_AN_EV(k);
			}
		} else if (strcmp(v->string, "timeout_ms") == 0) {
			if (!get_u64(c, v, key, 1, 3600000, &a->timeout_ms))
				return false;
		} else if (strcmp(v->string, "retries") == 0) {
			if (!get_u64(c, v, key, 0, 10, &u))
				return false;
			a->retries = (unsigned int)u;
		} else if (strcmp(v->string, "concurrency") == 0) {
			if (!get_u64(c, v, key, 1, 64, &u))
				return false;
			a->concurrency = (unsigned int)u;
		} else if (strcmp(v->string, "limits") == 0) {
			const cJSON *l;

			if (!cJSON_IsObject(v))
				return fail(c, key, "must be an object (memory_mb, cpu_s, nofile)");
			cJSON_ArrayForEach(l, v) {
				char lkey[200];
				uint64_t *dst = strcmp(l->string, "memory_mb") == 0 ? &a->limit_memory_mb :
						strcmp(l->string, "cpu_s") == 0	    ? &a->limit_cpu_s :
						strcmp(l->string, "nofile") == 0    ? &a->limit_nofile :
										      NULL;

				snprintf(lkey, sizeof(lkey), "%s.%s", key, l->string);
				if (!dst)
					return fail(c, lkey, "unknown limit (known: memory_mb, cpu_s, "
							     "nofile)");
				if (!get_u64(c, l, lkey, 1, 1u << 30, dst))
					return false;
			}
		} else if (strcmp(v->string, "user") == 0) {
			if (!get_str(c, v, key, &a->user))
				return false;
			a->as_root = strcmp(a->user, "root") == 0;
			if (strcmp(a->user, "owner") == 0 || a->as_root) {
				free(a->user);	/* the two that need no account lookup */
				a->user = NULL;
			}
		} else if (strcmp(v->string, "retry_delay_ms") == 0) {
			if (!get_u64(c, v, key, 1, 3600000, &a->retry_delay_ms))
				return false;
		} else {
			return fail(c, key, "unknown key (known: name, match, events, on_change, "
					    "on_delete, batch, timeout_ms, retries, retry_delay_ms, concurrency, limits, "
					    "user)");
		}
	}
	if (!a->name)
		return fail(c, where, "needs a \"name\"");
	if (!a->on_change && !a->on_delete && !a->batch)
		return fail(c, where, "needs \"on_change\", \"on_delete\" or \"batch\"");
	if (a->batch && (a->on_change || a->on_delete))
		return fail(c, where, "\"batch\" goes alone, without \"on_change\"/\"on_delete\"");
	return true;
}

static bool get_project(struct cfg_ctx *c, const cJSON *o, size_t i, struct vw_config_project *p)
{
	char key[96];
	const cJSON *v;

	p->default_ignores = true;
	snprintf(key, sizeof(key), "projects[%zu]", i);
	if (!cJSON_IsObject(o))
		return fail(c, key, "must be an object");
	cJSON_ArrayForEach(v, o) {
		snprintf(key, sizeof(key), "projects[%zu].%s", i, v->string);
		if (given_twice(c, o, v, key))
			return false;
		if (strcmp(v->string, "name") == 0) {
			if (!get_str(c, v, key, &p->name))
				return false;
			if (strchr(p->name, '/'))
				return fail(c, key, "must not contain '/'");
		} else if (strcmp(v->string, "root") == 0) {
			if (!get_str(c, v, key, &p->root))
				return false;
			if (p->root[0] != '/')
				return fail(c, key, "must be an absolute path, not '%s'", p->root);
		} else if (strcmp(v->string, "ignore") == 0) {
			const cJSON *pat;
			size_t n = 0;

			if (!cJSON_IsArray(v))
				return fail(c, key, "must be an array of patterns");
			p->ignore = calloc(cJSON_GetArraySize(v) + 1, sizeof(*p->ignore));
			if (!p->ignore)
				return fail(c, key, "out of memory");
			cJSON_ArrayForEach(pat, v) {
				if (!cJSON_IsString(pat))
					return fail(c, key, "must hold strings only");
				p->ignore[n] = strdup(pat->valuestring);
				if (!p->ignore[n++])
					return fail(c, key, "out of memory");
			}
			p->nignore = n;
		} else if (strcmp(v->string, "gitignore") == 0) {
			if (!get_bool(c, v, key, &p->gitignore))
				return false;
		} else if (strcmp(v->string, "default_ignores") == 0) {
			if (!get_bool(c, v, key, &p->default_ignores))
				return false;
		} else if (strcmp(v->string, "readers") == 0) {
			const cJSON *r;
			size_t n = 0;

			if (!cJSON_IsArray(v))
				return fail(c, key, "must be an array of user names and \"@group\" names");
			p->readers = calloc(cJSON_GetArraySize(v) + 1, sizeof(*p->readers));
			if (!p->readers)
				return fail(c, key, "out of memory");
			cJSON_ArrayForEach(r, v) {
				if (!cJSON_IsString(r) || !r->valuestring[0] ||
				    (r->valuestring[0] == '@' && !r->valuestring[1]))
					return fail(c, key, "must hold user names and \"@group\" names");
				if (!(p->readers[n++] = strdup(r->valuestring)))
					return fail(c, key, "out of memory");
			}
		} else if (strcmp(v->string, "analyzers") == 0) {
			const cJSON *an;

			if (!cJSON_IsArray(v))
				return fail(c, key, "must be an array of analyzer objects");
			p->analyzers = calloc(cJSON_GetArraySize(v) + 1, sizeof(*p->analyzers));
			if (!p->analyzers)
				return fail(c, key, "out of memory");
			cJSON_ArrayForEach(an, v) {
				char where[128];

				snprintf(where, sizeof(where), "%s[%zu]", key, p->nanalyzers);
				if (!get_analyzer(c, an, where, &p->analyzers[p->nanalyzers++]))
					return false;
			}
		} else {
			return fail(c, key, "unknown key (known: name, root, ignore, gitignore, "
					    "default_ignores, readers, analyzers)");
		}
	}
	if (!p->root) {
		snprintf(key, sizeof(key), "projects[%zu]", i);
		return fail(c, key, "needs a \"root\"");
	}
	return true;
}

static bool get_global(struct cfg_ctx *c, struct vw_config *cfg, const cJSON *v)
{
	const char *k = v->string;
	uint64_t lvl;

	if (strcmp(k, "settle_ms") == 0)
		return (cfg->has_settle = get_u64(c, v, k, 1, 60000, &cfg->settle_ms));
	if (strcmp(k, "max_delay_ms") == 0)
		return (cfg->has_max_delay = get_u64(c, v, k, 1, 600000, &cfg->max_delay_ms));
	if (strcmp(k, "batch_max") == 0)
		return (cfg->has_batch_max = get_u64(c, v, k, 1, 10000000, &cfg->batch_max));
	if (strcmp(k, "user_projects") == 0)
		return (cfg->has_user_projects = get_u64(c, v, k, 0, VW_PROJECTS_MAX,
							 &cfg->user_projects));
	if (strcmp(k, "user_reply_mb") == 0)
		return (cfg->has_user_reply_mb = get_u64(c, v, k, 1, 65536, &cfg->user_reply_mb));
	if (strcmp(k, "state_keep_days") == 0)
		return (cfg->has_state_keep_days = get_u64(c, v, k, 0, 36500, &cfg->state_keep_days));
	if (strcmp(k, "journal_mb") == 0)
		return (cfg->has_journal_mb = get_u64(c, v, k, 1, 4096, &cfg->journal_mb));
	if (strcmp(k, "skip_identical") == 0)
		return (cfg->has_skip_identical = get_bool(c, v, k, &cfg->skip_identical));
	if (strcmp(k, "run_dir") == 0) {
		if (!get_str(c, v, k, &cfg->run_dir))
			return false;
		return cfg->run_dir[0] == '/' || fail(c, k, "must be an absolute path");
	}
	if (strcmp(k, "state_dir") == 0) {
		if (!get_str(c, v, k, &cfg->state_dir))
			return false;
		return cfg->state_dir[0] == '/' || fail(c, k, "must be an absolute path");
	}
	if (strcmp(k, "metrics_file") == 0) {
		if (!get_str(c, v, k, &cfg->metrics_file))
			return false;
		return cfg->metrics_file[0] == '/' || fail(c, k, "must be an absolute path");
	}
	if (strcmp(k, "socket_group") == 0)
		return get_str(c, v, k, &cfg->socket_group);
	if (strcmp(k, "verbose") == 0) {
		if (!get_u64(c, v, k, 0, 3, &lvl))
			return false;
		cfg->verbose = (int)lvl;
		return true;
	}
	if (strcmp(k, "backend") == 0) {
		static const char *const ok[] = { "auto", "fentry", "tracepoint", "fanotify" };

		if (!get_str(c, v, k, &cfg->backend))
			return false;
		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			if (strcmp(cfg->backend, ok[i]) == 0)
				return (cfg->has_backend = true);
		return fail(c, k, "must be auto, fentry, tracepoint or fanotify, not '%s'",
			    cfg->backend);
	}
	if (strcmp(k, "projects") == 0) {
		const cJSON *p;
		size_t i = 0;

		if (!cJSON_IsArray(v))
			return fail(c, k, "must be an array of project objects");
		cfg->projects = calloc(cJSON_GetArraySize(v) + 1, sizeof(*cfg->projects));
		if (!cfg->projects)
			return fail(c, k, "out of memory");
		cJSON_ArrayForEach(p, v) {
			cfg->nprojects = i + 1;
			if (!get_project(c, p, i, &cfg->projects[i]))
				return false;
			i++;
		}
		return true;
	}
	return fail(c, k, "unknown key (known: settle_ms, max_delay_ms, batch_max, journal_mb, "
			  "user_projects, user_reply_mb, state_keep_days, backend, skip_identical, run_dir, state_dir, metrics_file, socket_group, "
			  "verbose, projects)");
}

static char *read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(CONFIG_MAX_BYTES + 1);
	n = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, f) : 0;
	fclose(f);
	if (!buf || n > CONFIG_MAX_BYTES) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, CONFIG_MAX_BYTES);
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	if (memchr(buf, 0, n)) {
		snprintf(err, errlen, "%s: holds a NUL byte: not a JSON text", path);
		free(buf);
		return NULL;
	}
	return buf;
}

struct vw_config *config_load(const char *path, char *err, size_t errlen)
{
	struct cfg_ctx c = { .file = path, .err = err, .errlen = errlen };
	struct vw_config *cfg = calloc(1, sizeof(*cfg));
	char *text = read_file(path, err, errlen);
	const char *where = NULL;
	cJSON *root, *v;

	if (!cfg || !text) {
		free(text);
		config_free(cfg);
		return NULL;
	}
	root = cJSON_ParseWithOpts(text, &where, true);
	if (!root) {
		size_t off = where ? (size_t)(where - text) : 0, line = 1;

		for (size_t i = 0; i < off; i++)
			line += text[i] == '\n';
		snprintf(err, errlen, "%s: line %zu: not valid JSON", path, line);
		goto fail;
	}
	if (!cJSON_IsObject(root)) {
		snprintf(err, errlen, "%s: the top level must be an object", path);
		goto fail;
	}
	cJSON_ArrayForEach(v, root)
		if (given_twice(&c, root, v, v->string) || !get_global(&c, cfg, v))
			goto fail;
	if (cfg->has_settle && cfg->has_max_delay && cfg->max_delay_ms < cfg->settle_ms) {
		snprintf(err, errlen, "%s: max_delay_ms: must not be shorter than settle_ms", path);
		goto fail;
	}
	cJSON_Delete(root);
	free(text);
	return cfg;
fail:
	cJSON_Delete(root);
	free(text);
	config_free(cfg);
	return NULL;
}

void analyzers_free(struct vw_analyzer *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++) {
		char **lists[] = { a[i].match, a[i].on_change, a[i].on_delete, a[i].batch };

		for (size_t l = 0; l < 4; l++) {
			for (char **s = lists[l]; s && *s; s++)
				free(*s);
			free(lists[l]);
		}
		free(a[i].name);
		free(a[i].user);
	}
	free(a);
}

void config_free(struct vw_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nprojects; i++) {
		struct vw_config_project *p = &c->projects[i];

		free(p->name);
		free(p->root);
		for (size_t j = 0; j < p->nignore; j++)
			free(p->ignore[j]);
		free(p->ignore);
		analyzers_free(p->analyzers, p->nanalyzers);
		for (char **r = p->readers; r && *r; r++)
			free(*r);
		free(p->readers);
	}
	free(c->projects);
	free(c->backend);
	free(c->run_dir);
	free(c->socket_group);
	free(c->state_dir);
	free(c->metrics_file);
	free(c);
}
