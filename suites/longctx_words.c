/* RULER's aggregation tasks for the longctx suite (reference/suites.md
 * 2.1): common_words (cwe), a numbered word list where ten words repeat
 * most, and frequent_words (fwe), Zipf-distributed coded words. Both fill a
 * character budget; longctx.c sizes that budget to the bucket. The word
 * list is our own, extended by generated words for long lists. */
#include "suites/longctx_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/pb.h"

#define CWE_COMMON 10 /* RULER's num_cw: the answer's words */
#define FWE_WORDLEN 6 /* RULER's coded_wordlen */
#define FWE_ZETA2 1.6449340668482264 /* zeta(2) = pi^2 / 6 */

/* Common English nouns, verbs and adjectives (none of the generated words'
 * shape: eight letters alternating consonant and vowel). */
static const char *const cwe_words[] = {
    "apple", "arm", "art", "baby", "back", "ball", "band", "bank", "base", "bath", "bean",
    "bear", "bed", "bell", "belt", "bird", "boat", "body", "bone", "book", "boot", "bottle",
    "box", "boy", "bread", "brick", "bridge", "brush", "bus", "cake", "camp", "card", "cart",
    "cat", "chair", "chalk", "cheese", "chest", "child", "city", "clock", "cloud", "coat",
    "coin", "corn", "cow", "cup", "desk", "dog", "door", "dream", "dress", "drink", "drum",
    "duck", "dust", "ear", "earth", "egg", "engine", "eye", "face", "farm", "field", "fire",
    "fish", "flag", "floor", "flower", "fog", "food", "foot", "fork", "fox", "frog", "fruit",
    "game", "garden", "gate", "gift", "girl", "glass", "glove", "goat", "gold", "grass",
    "hair", "hall", "hand", "hat", "heart", "hill", "horse", "house", "ice", "iron", "island",
    "jar", "jelly", "key", "king", "kite", "knee", "knife", "lake", "lamp", "leaf", "leg",
    "lemon", "letter", "light", "lion", "lock", "map", "market", "milk", "moon", "mouse",
    "mouth", "nail", "neck", "nest", "net", "night", "nose", "ocean", "orange", "oven", "owl",
    "paint", "paper", "park", "pen", "pencil", "pig", "pillow", "pipe", "plane", "plant",
    "plate", "pocket", "pond", "potato", "queen", "rabbit", "rain", "ring", "river", "road",
    "rock", "roof", "room", "root", "rope", "rose", "salt", "sand", "school", "sea", "seed",
    "sheep", "shell", "ship", "shirt", "shoe", "shop", "silver", "sister", "sky", "snake",
    "snow", "soap", "sock", "song", "soup", "spoon", "star", "stone", "storm", "street",
    "sugar", "sun", "table", "tail", "tea", "tent", "thread", "tiger", "toe", "tooth",
    "towel", "tower", "town", "toy", "train", "tree", "truck", "umbrella", "valley", "wall",
    "watch", "water", "wave", "wheel", "window", "wing", "winter", "wolf", "wood", "wool",
    "worm", "yard", "answer", "bake", "borrow", "build", "carry", "catch", "climb", "cook",
    "count", "dance", "dig", "draw", "drive", "eat", "fall", "fly", "fold", "follow",
    "gather", "grow", "hide", "hold", "hunt", "jump", "kick", "knock", "laugh", "learn",
    "lift", "listen", "march", "mix", "open", "pack", "pour", "pull", "push", "read", "ride",
    "run", "sail", "sew", "shout", "sing", "sit", "skip", "sleep", "smile", "speak", "spin",
    "stand", "swim", "talk", "teach", "throw", "travel", "wait", "walk", "wash", "whisper",
    "write", "angry", "bitter", "brave", "bright", "broad", "busy", "calm", "cheap", "clean",
    "clever", "cold", "cool", "curly", "dark", "deep", "dry", "early", "empty", "fair",
    "fast", "fresh", "full", "gentle", "glad", "green", "happy", "heavy", "hollow", "honest",
    "huge", "kind", "late", "lazy", "little", "loud", "lucky", "narrow", "neat", "noisy",
    "old", "plain", "polite", "proud", "purple", "quick", "quiet", "rapid", "rich", "round",
    "rough", "sharp", "shiny", "short", "silent", "simple", "slow", "small", "smooth", "soft",
    "sour", "steep", "sticky", "strong", "sweet", "tall", "thick", "thin", "tiny", "warm",
    "weak", "wide", "wild", "wise", "yellow", "young"};
#define CWE_N_WORDS PB_ARRAY_LEN(cwe_words)

const char *ps__lc_cwe_word(size_t i)
{
    return i < CWE_N_WORDS ? cwe_words[i] : NULL;
}

void ps__lc_gen_word(uint32_t code, char out[9])
{
    static const char cons[] = "bdfgklmnprstvz", vow[] = "aeiou";
    for (int s = 0; s < 4; s++) {
        unsigned syl = code % 70;
        code /= 70;
        out[2 * s] = cons[syl / 5];
        out[2 * s + 1] = vow[syl % 5];
    }
    out[8] = '\0';
}

/* Digits in 1 .. n written out: sum over k of digits(k). */
static int64_t digit_sum(int64_t n)
{
    int64_t total = 0, lo = 1;
    for (int d = 1; lo <= n; d++, lo *= 10) {
        int64_t hi = lo * 10 - 1 < n ? lo * 10 - 1 : n;
        total += (hi - lo + 1) * d;
    }
    return total;
}

/* Fisher-Yates shuffle of a[0, n). */
static void shuffle_u32(pb_rng_t *rng, uint32_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)pb_rng_below(rng, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Uncommon word j of a cwe list: the built-in words the common ones left,
 * in order[], then generated words at the distinct codes a*j' + b mod 70^4
 * (a is coprime to 70^4, so j' -> code is one-to-one). */
typedef struct cwe_vocab {
    uint32_t order[CWE_N_WORDS]; /* order[0, 10): the common words */
    uint64_t a, b;
    char gen[9];
} cwe_vocab_t;

static const char *cwe_word(cwe_vocab_t *v, size_t w)
{
    if (w < CWE_N_WORDS)
        return cwe_words[v->order[w]];
    uint64_t j = (uint64_t)(w - CWE_N_WORDS);
    ps__lc_gen_word((uint32_t)((v->a * j + v->b) % PS_LC_GEN_WORDS), v->gen);
    return v->gen;
}

int ps__lc_render_cwe(int64_t bucket, int64_t chars, pb_rng_t *rng, pb_buf_t *pr, pb_buf_t *ref)
{
    static const char head[] = "Below is a numbered list of words. In these words, some appear "
                               "more often than others. Memorize the ones that appear most "
                               "often.\n";
    static const char tail[] = "\nQuestion: What are the 10 most common words in the above "
                               "list? Answer: The top 10 words that appear most often in the "
                               "list are:";
    /* RULER: 30 and 3 repeats from 4096 on, 6 and 1 below */
    const int64_t cr = bucket >= 4096 ? 30 : 6, ur = bucket >= 4096 ? 3 : 1;
    int64_t room = chars - (int64_t)(sizeof head - 1 + sizeof tail - 1);
    cwe_vocab_t v;
    uint32_t *list = NULL;
    int rc = 0;

    for (uint32_t i = 0; i < CWE_N_WORDS; i++)
        v.order[i] = i;
    shuffle_u32(rng, v.order, CWE_N_WORDS);
    do
        v.a = 1 + pb_rng_below(rng, PS_LC_GEN_WORDS - 1);
    while (gcd_u64(v.a, PS_LC_GEN_WORDS) != 1);
    v.b = pb_rng_below(rng, PS_LC_GEN_WORDS);

    /* entries "k. word" joined by " ": the numbers, dots and spaces of E
     * entries take digit_sum(E) + 3E - 1 chars; add uncommon words while
     * the list fits */
    int64_t words = 0, n_u = 0;
    for (size_t w = 0; w < CWE_COMMON; w++)
        words += cr * (int64_t)strlen(cwe_word(&v, w));
    for (;; n_u++) {
        int64_t e = CWE_COMMON * cr + (n_u + 1) * ur;
        int64_t add = ur * (int64_t)strlen(cwe_word(&v, CWE_COMMON + (size_t)n_u));
        if (words + add + digit_sum(e) + 3 * e - 1 > room || n_u + 1 >= (int64_t)PS_LC_GEN_WORDS)
            break;
        words += add;
    }
    int64_t n = CWE_COMMON * cr + n_u * ur;
    if (words + digit_sum(n) + 3 * n - 1 > room)
        return PB_EINVAL;
    if ((list = malloc(sizeof *list * (size_t)n)) == NULL)
        return PB_ENOMEM;
    size_t k = 0;
    for (uint32_t w = 0; w < CWE_COMMON + (uint32_t)n_u; w++)
        for (int64_t r = 0; r < (w < CWE_COMMON ? cr : ur); r++)
            list[k++] = w;
    shuffle_u32(rng, list, k);
    rc = pb_buf_puts(pr, head);
    for (size_t i = 0; i < k && rc == 0; i++)
        rc = pb_buf_printf(pr, "%s%zu. %s", i ? " " : "", i + 1, cwe_word(&v, list[i]));
    rc = rc ? rc : pb_buf_puts(pr, tail);
    for (size_t w = 0; w < CWE_COMMON && rc == 0; w++)
        rc = pb_buf_printf(ref, "%s%s", w ? "\n" : "", cwe_word(&v, w));
    free(list);
    return rc;
}

/* RULER's Zipf counts: num_words * k^-2 / zeta(2), truncated, for rank k >= 1. */
static int64_t fwe_count(int64_t num_words, int64_t k)
{
    return (int64_t)((double)num_words / ((double)k * (double)k * FWE_ZETA2));
}

/* Chars of the coded text for num_words: every word of rank k <= vocab and
 * its separating space; rank 1 is "...". */
static int64_t fwe_chars(int64_t num_words, int64_t vocab)
{
    int64_t total = 0;
    for (int64_t k = 1; k <= vocab; k++) {
        int64_t c = fwe_count(num_words, k);
        if (c == 0)
            break;
        total += c * ((k == 1 ? 3 : FWE_WORDLEN) + 1);
    }
    return total - 1;
}

int ps__lc_render_fwe(int64_t bucket, int64_t chars, pb_rng_t *rng, pb_buf_t *pr, pb_buf_t *ref)
{
    static const char head[] = "Read the following coded text and track the frequency of each "
                               "coded word. Find the three most frequently appeared coded "
                               "words. ";
    static const char tail[] = "\nQuestion: Do not provide any explanation. Please ignore the "
                               "dots '....'. What are the three most frequently appeared words "
                               "in the above coded text? Answer: According to the coded text "
                               "above, the three most frequently appeared words are:";
    const int64_t vocab = bucket / 50 > 5 ? bucket / 50 : 5; /* RULER: max_len // 50 */
    int64_t room = chars - (int64_t)(sizeof head - 1 + sizeof tail - 1);
    char (*words)[FWE_WORDLEN + 1] = NULL;
    uint32_t *list = NULL;
    int rc = 0;

    /* the most words whose text fits: the length grows with num_words */
    int64_t lo = 0, hi = room > 0 ? room : 0;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (fwe_chars(mid, vocab) <= room)
            lo = mid;
        else
            hi = mid - 1;
    }
    /* ranks 2-4 must stand clear of rank 5 */
    if (fwe_count(lo, 4) <= fwe_count(lo, 5))
        return PB_EINVAL;
    int64_t ranks = 0, n = 0;
    while (ranks < vocab && fwe_count(lo, ranks + 1) > 0)
        n += fwe_count(lo, ++ranks);
    if (ranks < 4)
        return PB_EINVAL;
    words = calloc((size_t)ranks, sizeof *words);
    list = malloc(sizeof *list * (size_t)n);
    if (words == NULL || list == NULL) {
        rc = PB_ENOMEM;
        goto out;
    }
    /* distinct random lowercase words for ranks 2.. (RULER's vocabulary) */
    memcpy(words[0], "...", 4);
    for (int64_t k = 1; k < ranks; k++) {
        int dup;
        do {
            for (int c = 0; c < FWE_WORDLEN; c++)
                words[k][c] = (char)('a' + pb_rng_below(rng, 26));
            dup = 0;
            for (int64_t j = 1; j < k && !dup; j++)
                dup = memcmp(words[j], words[k], FWE_WORDLEN) == 0;
        } while (dup);
    }
    size_t m = 0;
    for (int64_t k = 0; k < ranks; k++)
        for (int64_t c = fwe_count(lo, k + 1); c > 0; c--)
            list[m++] = (uint32_t)k;
    shuffle_u32(rng, list, m);
    rc = pb_buf_puts(pr, head);
    for (size_t i = 0; i < m && rc == 0; i++) {
        if (i > 0)
            rc = pb_buf_puts(pr, " ");
        rc = rc ? rc : pb_buf_puts(pr, words[list[i]]);
    }
    rc = rc ? rc : pb_buf_puts(pr, tail);
    for (int k = 1; k <= 3 && rc == 0; k++)
        rc = pb_buf_printf(ref, "%s%s", k > 1 ? "\n" : "", words[k]);
out:
    free(words);
    free(list);
    return rc;
}
