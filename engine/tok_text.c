/* UTF-8 decoding, compact Unicode class tables and the hand-written scanners
 * for the GPT-2 and Llama-3 pre-tokenizer regexes (no regex library).
 * Approximation: letters, numbers, marks and punctuation come from range
 * tables covering Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, Indic,
 * Thai, Hangul, kana, CJK and full-width forms; rarer scripts count as
 * "other", which only moves piece boundaries, never loses bytes. */
#include "engine/tok_int.h"

int32_t pe_utf8_next(const char *s, size_t n, size_t *adv)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c = u[0], cp;
    size_t k;
    *adv = 1;
    if (c < 0x80)
        return (int32_t)c;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 2;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 3;
        cp = c & 0x07;
    } else
        return -1;
    if (n < k + 1)
        return -1;
    for (size_t i = 1; i <= k; i++) {
        if ((u[i] & 0xC0) != 0x80)
            return -1;
        cp = cp << 6 | (u[i] & 0x3F);
    }
    /* Overlong forms, surrogates and > U+10FFFF are invalid. */
    if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *adv = k + 1;
    return (int32_t)cp;
}

size_t pe_utf8_put(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

typedef struct {
    int32_t lo, hi;
} range_t;

static int in_ranges(const range_t *r, size_t n, int32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

#define RN(a) (sizeof(a) / sizeof((a)[0]))

static const range_t letters[] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xAA, 0xAA},       {0xB5, 0xB5},
    {0xBA, 0xBA},       {0xC0, 0xD6},       {0xD8, 0xF6},       {0xF8, 0x2C1},
    {0x2C6, 0x2D1},     {0x2E0, 0x2E4},     {0x370, 0x374},     {0x376, 0x37D},
    {0x386, 0x386},     {0x388, 0x3FF},     {0x400, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x561, 0x587},     {0x5D0, 0x5EA},     {0x620, 0x64A},
    {0x671, 0x6D3},     {0x904, 0x939},     {0x958, 0x961},     {0x985, 0x9B9},
    {0xE01, 0xE30},     {0x10A0, 0x10FF},   {0x1100, 0x11FF},   {0x1E00, 0x1FBC},
    {0x1FC2, 0x1FFC},   {0x2C00, 0x2CE4},   {0x3041, 0x3096},   {0x309D, 0x309F},
    {0x30A1, 0x30FA},   {0x30FC, 0x30FF},   {0x3105, 0x312F},   {0x3131, 0x318E},
    {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA48C},   {0xAC00, 0xD7A3},
    {0xF900, 0xFAFF},   {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0xFF66, 0xFFDC},
    {0x10400, 0x1044F}, {0x1D400, 0x1D7CB}, {0x20000, 0x2FFFF}, {0x30000, 0x3134A},
};

static const range_t numbers[] = {
    {0x30, 0x39},     {0xB2, 0xB3},     {0xB9, 0xB9},     {0xBC, 0xBE},     {0x660, 0x669},
    {0x6F0, 0x6F9},   {0x966, 0x96F},   {0x9E6, 0x9EF},   {0xE50, 0xE59},   {0x2070, 0x2070},
    {0x2074, 0x2079}, {0x2080, 0x2089}, {0x2150, 0x2189}, {0x2460, 0x249B}, {0x24EA, 0x24FF},
    {0x2776, 0x2793}, {0x3007, 0x3007}, {0x3021, 0x3029}, {0xFF10, 0xFF19}, {0x1D7CE, 0x1D7FF},
};

static const range_t marks[] = {
    {0x300, 0x36F},   {0x483, 0x489},   {0x591, 0x5BD},   {0x610, 0x61A},   {0x64B, 0x65F},
    {0x900, 0x903},   {0x93A, 0x94F},   {0xE31, 0xE3A},   {0xE47, 0xE4E},   {0x1AB0, 0x1AFF},
    {0x1DC0, 0x1DFF}, {0x20D0, 0x20FF}, {0x3099, 0x309A}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
};

static const range_t puncts[] = {
    {0x21, 0x2F},     {0x3A, 0x40},     {0x5B, 0x60},     {0x7B, 0x7E},     {0xA1, 0xA1},
    {0xA7, 0xA7},     {0xAB, 0xAB},     {0xB6, 0xB7},     {0xBB, 0xBB},     {0xBF, 0xBF},
    {0x37E, 0x37E},   {0x55A, 0x55F},   {0x589, 0x58A},   {0x5BE, 0x5BE},   {0x60C, 0x60D},
    {0x61B, 0x61F},   {0x964, 0x965},   {0x2010, 0x2027}, {0x2030, 0x205E}, {0x2E00, 0x2E4F},
    {0x3001, 0x3003}, {0x3008, 0x3011}, {0x3014, 0x301F}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF20},
    {0xFF3B, 0xFF40}, {0xFF5B, 0xFF65},
};

int pe_uc_letter(int32_t cp)
{
    if (cp < 0x80)
        return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_ranges(letters, RN(letters), cp);
}

int pe_uc_number(int32_t cp)
{
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return in_ranges(numbers, RN(numbers), cp);
}

int pe_uc_space(int32_t cp)
{
    if (cp < 0x80)
        return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* BERT counts every non-alphanumeric ASCII symbol as punctuation too. */
int pe_uc_punct(int32_t cp) { return cp >= 0 && in_ranges(puncts, RN(puncts), cp); }
int pe_uc_mark(int32_t cp) { return cp >= 0 && in_ranges(marks, RN(marks), cp); }

int pe_uc_cjk(int32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2FA1F) || (cp >= 0xF900 && cp <= 0xFAFF);
}

/* Simple case folding for the ranges with a fixed offset (Latin-1,
 * Greek, Cyrillic, full-width); other scripts are left as they are. */
int32_t pe_uc_lower(int32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return cp + 32;
    if (cp < 0xC0)
        return cp;
    if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2))
        return cp + 32;
    if (cp >= 0x410 && cp <= 0x42F)
        return cp + 32;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 80;
    if (cp >= 0xFF21 && cp <= 0xFF3A)
        return cp + 32;
    /* Latin Extended-A pairs upper/lower case by parity. */
    if ((cp >= 0x100 && cp <= 0x137 && cp != 0x130) || (cp >= 0x14A && cp <= 0x177))
        return cp & 1 ? cp : cp + 1;
    if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E))
        return cp & 1 ? cp + 1 : cp;
    return cp;
}

/* Classes for the scanners: invalid bytes (-1) count as "other". */
enum { C_L, C_N, C_S, C_O };

static int cls(int32_t cp)
{
    if (cp < 0)
        return C_O;
    if (pe_uc_letter(cp))
        return C_L;
    if (pe_uc_number(cp))
        return C_N;
    if (pe_uc_space(cp))
        return C_S;
    return C_O;
}

/* 's 't 're 've 'm 'll 'd, optionally case-insensitive: length or 0. */
static size_t contraction(const char *s, size_t n, int icase)
{
    static const char *const sfx[] = {"s", "t", "re", "ve", "m", "ll", "d"};
    if (n < 2 || s[0] != '\'')
        return 0;
    for (size_t i = 0; i < RN(sfx); i++) {
        size_t k = sfx[i][1] ? 2 : 1, j;
        if (n < k + 1)
            continue;
        for (j = 0; j < k; j++) {
            char c = s[1 + j];
            if (icase && c >= 'A' && c <= 'Z')
                c = (char)(c + 32);
            if (c != sfx[i][j])
                break;
        }
        if (j == k)
            return k + 1;
    }
    return 0;
}

/* End of the run of class c (or, with c < 0, not L/N/S) starting at i. */
static size_t run(const char *s, size_t n, size_t i, int c, size_t max_chars)
{
    size_t adv, k = 0;
    while (i < n && k < max_chars) {
        int d = cls(pe_utf8_next(s + i, n - i, &adv));
        if (c >= 0 ? d != c : d != C_O)
            break;
        i += adv;
        k++;
    }
    return i;
}

/* \s+(?!\S) | \s+ at a whitespace run starting at 0: the run less its last
 * character when that character is followed by a non-space. */
static size_t spaces(const char *s, size_t n)
{
    size_t i = 0, last = 0, adv;
    while (i < n) {
        int32_t cp = pe_utf8_next(s + i, n - i, &adv);
        if (cls(cp) != C_S)
            break;
        last = i;
        i += adv;
    }
    if (i < n && last > 0)
        return last;
    return i;
}

size_t pe_pre_gpt2(const char *s, size_t n)
{
    size_t adv, k, adv2;
    if ((k = contraction(s, n, 0)) > 0)
        return k;
    int32_t cp = pe_utf8_next(s, n, &adv);
    int c = cls(cp);
    size_t start = 0;
    if (cp == ' ' && n > 1) {
        int c2 = cls(pe_utf8_next(s + 1, n - 1, &adv2));
        if (c2 != C_S) {
            start = 1;
            c = c2;
        }
    }
    if (c == C_L || c == C_N)
        return run(s, n, start, c, SIZE_MAX);
    if (c == C_O)
        return run(s, n, start, -1, SIZE_MAX);
    return spaces(s, n);
}

static int is_crlf(int32_t cp) { return cp == '\r' || cp == '\n'; }

size_t pe_pre_llama3(const char *s, size_t n, int digits)
{
    size_t adv, adv2, k;
    if ((k = contraction(s, n, 1)) > 0)
        return k;
    int32_t cp = pe_utf8_next(s, n, &adv);
    int c = cls(cp);
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (c == C_L)
        return run(s, n, 0, C_L, SIZE_MAX);
    if (c != C_N && !is_crlf(cp) && adv < n && cls(pe_utf8_next(s + adv, n - adv, &adv2)) == C_L)
        return run(s, n, adv, C_L, SIZE_MAX);
    /* \p{N}{1,digits} */
    if (c == C_N)
        return run(s, n, 0, C_N, (size_t)(digits > 0 ? digits : 1));
    /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    size_t start = cp == ' ' && adv < n ? 1 : 0;
    if (cls(pe_utf8_next(s + start, n - start, &adv2)) == C_O) {
        size_t i = run(s, n, start, -1, SIZE_MAX);
        while (i < n && (s[i] == '\r' || s[i] == '\n'))
            i++;
        return i;
    }
    /* \s*[\r\n]+ : up to the last newline of the whitespace run. */
    size_t i = 0, nl = 0;
    while (i < n) {
        int32_t d = pe_utf8_next(s + i, n - i, &adv2);
        if (cls(d) != C_S)
            break;
        i += adv2;
        if (is_crlf(d))
            nl = i;
    }
    if (nl > 0)
        return nl;
    return spaces(s, n);
}
