/*
 * A PKCS#11 module that stands for a network HSM in benchmarks: it loads the
 * real module named by KCM_SLOW_TOKEN_MODULE (SoftHSM2), hands out that
 * module's function list with the calls a gateway request makes wrapped,
 * and makes each of those calls wait KCM_SLOW_TOKEN_US microseconds (default
 * 1000) before forwarding: a round trip to the HSM per call, as a network
 * HSM's client library does. The wrapped calls are the data-key unwrap,
 * random, GCM init/encrypt/decrypt and object destruction (the transport
 * key's set-up makes some of these too); everything else (initialisation,
 * slots, sessions, login, key generation) goes straight through, unless one
 * of the two faults below is set.
 * KCM_SLOW_TOKEN_SKIP=N lets the first N wrapped calls through undelayed
 * (e.g. the transport key's set-up, so that only requests meet the delay).
 *
 * Two more faults, for the tests of start-up and set-up deadlines (both off
 * unless set): KCM_SLOW_TOKEN_INIT_US delays every C_Initialize but the
 * first (the main thread's: the token workers' own calls then hang, as a
 * client library that cannot reach its HSM does), and KCM_SLOW_TOKEN_KEYGEN_US
 * delays C_GenerateKeyPair (the transport key's RSA pair).
 *
 * Built by bench/hsm/slow-token-probe.ts:
 *   gcc -shared -fPIC -O2 -o libslowtoken.so slow-token.c -ldl -lpthread
 *
 * The function list is laid out as PKCS#11 v2.40 defines CK_FUNCTION_LIST:
 * a CK_VERSION, then 68 function pointers in the standard's order; only the
 * indices below are touched. No header of another project is used.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef unsigned long ul;
typedef ul rv_t;

#define FUNCTIONS 68
struct function_list {
  unsigned char major, minor;
  void *fn[FUNCTIONS];
};

/* Indices in CK_FUNCTION_LIST (PKCS#11 v2.40, section 5.3 order). */
enum {
  I_INITIALIZE = 0,
  I_DESTROY_OBJECT = 22,
  I_ENCRYPT_INIT = 29,
  I_ENCRYPT = 30,
  I_ENCRYPT_FINAL = 32,
  I_DECRYPT_INIT = 33,
  I_DECRYPT = 34,
  I_DECRYPT_UPDATE = 35,
  I_DECRYPT_FINAL = 36,
  I_GENERATE_KEY_PAIR = 59,
  I_UNWRAP_KEY = 61,
  I_GENERATE_RANDOM = 64,
};

#define CKR_GENERAL_ERROR 5UL

static struct function_list wrapped;
static struct function_list *real;
static long delay_us = 1000;
static long skip = 0;
static long calls = 0;
static long init_us = 0;
static long keygen_us = 0;
static long inits = 0;

static void wait_us(long us) {
  struct timespec t = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

static void round_trip(void) {
  if (__atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED) < skip) return;
  wait_us(delay_us);
}

#define REAL(i, type) ((type)real->fn[i])

static rv_t initialize(void *args) {
  if (__atomic_fetch_add(&inits, 1, __ATOMIC_RELAXED) > 0 && init_us > 0) wait_us(init_us);
  return REAL(I_INITIALIZE, rv_t (*)(void *))(args);
}
static rv_t generate_key_pair(ul s, void *m, void *pub, ul npub, void *priv, ul npriv, ul *hpub, ul *hpriv) {
  if (keygen_us > 0) wait_us(keygen_us);
  return REAL(I_GENERATE_KEY_PAIR, rv_t (*)(ul, void *, void *, ul, void *, ul, ul *, ul *))(
      s, m, pub, npub, priv, npriv, hpub, hpriv);
}
static rv_t destroy_object(ul s, ul o) {
  round_trip();
  return REAL(I_DESTROY_OBJECT, rv_t (*)(ul, ul))(s, o);
}
static rv_t encrypt_init(ul s, void *m, ul k) {
  round_trip();
  return REAL(I_ENCRYPT_INIT, rv_t (*)(ul, void *, ul))(s, m, k);
}
static rv_t encrypt(ul s, void *in, ul n, void *out, ul *outn) {
  round_trip();
  return REAL(I_ENCRYPT, rv_t (*)(ul, void *, ul, void *, ul *))(s, in, n, out, outn);
}
static rv_t encrypt_final(ul s, void *out, ul *outn) {
  round_trip();
  return REAL(I_ENCRYPT_FINAL, rv_t (*)(ul, void *, ul *))(s, out, outn);
}
static rv_t decrypt_init(ul s, void *m, ul k) {
  round_trip();
  return REAL(I_DECRYPT_INIT, rv_t (*)(ul, void *, ul))(s, m, k);
}
static rv_t decrypt(ul s, void *in, ul n, void *out, ul *outn) {
  round_trip();
  return REAL(I_DECRYPT, rv_t (*)(ul, void *, ul, void *, ul *))(s, in, n, out, outn);
}
static rv_t decrypt_update(ul s, void *in, ul n, void *out, ul *outn) {
  round_trip();
  return REAL(I_DECRYPT_UPDATE, rv_t (*)(ul, void *, ul, void *, ul *))(s, in, n, out, outn);
}
static rv_t decrypt_final(ul s, void *out, ul *outn) {
  round_trip();
  return REAL(I_DECRYPT_FINAL, rv_t (*)(ul, void *, ul *))(s, out, outn);
}
static rv_t unwrap_key(ul s, void *m, ul k, void *w, ul n, void *t, ul tn, ul *h) {
  round_trip();
  return REAL(I_UNWRAP_KEY, rv_t (*)(ul, void *, ul, void *, ul, void *, ul, ul *))(s, m, k, w, n, t, tn, h);
}
static rv_t generate_random(ul s, void *out, ul n) {
  round_trip();
  return REAL(I_GENERATE_RANDOM, rv_t (*)(ul, void *, ul))(s, out, n);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Loads the real module and builds the wrapped list, once per process (dlopen keeps one copy). */
static void load(void) {
  const char *path = getenv("KCM_SLOW_TOKEN_MODULE");
  const char *us = getenv("KCM_SLOW_TOKEN_US");
  const char *first = getenv("KCM_SLOW_TOKEN_SKIP");
  const char *init = getenv("KCM_SLOW_TOKEN_INIT_US");
  const char *keygen = getenv("KCM_SLOW_TOKEN_KEYGEN_US");
  if (us && atol(us) >= 0) delay_us = atol(us);
  if (first && atol(first) >= 0) skip = atol(first);
  if (init && atol(init) > 0) init_us = atol(init);
  if (keygen && atol(keygen) > 0) keygen_us = atol(keygen);
  void *lib = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
  rv_t (*get)(struct function_list **) = lib ? (rv_t (*)(struct function_list **))dlsym(lib, "C_GetFunctionList") : NULL;
  struct function_list *list = NULL;
  if (!get || get(&list) != 0UL || !list) return;
  memcpy(&wrapped, list, sizeof wrapped);
  wrapped.fn[I_INITIALIZE] = (void *)initialize;
  wrapped.fn[I_GENERATE_KEY_PAIR] = (void *)generate_key_pair;
  wrapped.fn[I_DESTROY_OBJECT] = (void *)destroy_object;
  wrapped.fn[I_ENCRYPT_INIT] = (void *)encrypt_init;
  wrapped.fn[I_ENCRYPT] = (void *)encrypt;
  wrapped.fn[I_ENCRYPT_FINAL] = (void *)encrypt_final;
  wrapped.fn[I_DECRYPT_INIT] = (void *)decrypt_init;
  wrapped.fn[I_DECRYPT] = (void *)decrypt;
  wrapped.fn[I_DECRYPT_UPDATE] = (void *)decrypt_update;
  wrapped.fn[I_DECRYPT_FINAL] = (void *)decrypt_final;
  wrapped.fn[I_UNWRAP_KEY] = (void *)unwrap_key;
  wrapped.fn[I_GENERATE_RANDOM] = (void *)generate_random;
  real = list;
}

/* The one export: PKCS#11's entry point. */
rv_t C_GetFunctionList(struct function_list **out) {
  if (!out) return 7UL; /* CKR_ARGUMENTS_BAD */
  pthread_once(&once, load);
  if (!real) return CKR_GENERAL_ERROR;
  *out = &wrapped;
  return 0UL;
}
