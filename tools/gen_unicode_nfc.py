"""Generates src/text/unicode_nfc_data.cpp: the canonical combining classes, canonical decompositions and
primary compositions that text/unicode_nfc.cpp needs for NFC, from Python's unicodedata (its Unicode
version is written into the file). Hangul syllables are computed arithmetically, not tabulated.

usage: python3 tools/gen_unicode_nfc.py src/text/unicode_nfc_data.cpp
"""
import sys

import unicodedata as u
ccc=[];dec=[];comp=[]
for cp in range(0x110000):
    if 0xD800<=cp<0xE000: continue
    c=chr(cp)
    k=u.combining(c)
    if k: ccc.append((cp,k))
    if 0xAC00<=cp<=0xD7A3: continue
    d=u.decomposition(c)
    if d and not d.startswith('<'):
        parts=[int(x,16) for x in d.split()]
        a=parts[0]; b=parts[1] if len(parts)>1 else 0
        dec.append((cp,a,b))
        if len(parts)==2 and u.normalize('NFC',chr(a)+chr(b))==c: comp.append((a,b,cp))
comp.sort()
def emit(name,rows,per):
    out=[]
    for i in range(0,len(rows),per):
        out.append('    '+' '.join('{'+','.join('0x%X'%v for v in r)+'},' for r in rows[i:i+per]))
    return out
L=['// Unicode %s canonical data for NFC, generated from Python unicodedata by tools/gen_unicode_nfc.py.'%u.unidata_version,
'// The algorithm that reads it is unicode_nfc.cpp; this file holds no logic.',
'#include "text/unicode_nfc_data.h"','','namespace adallm::text::unicode_data {','',
'const CccEntry kCcc[] = {']+emit('c',ccc,12)+['};','const size_t kCccSize = sizeof(kCcc) / sizeof(kCcc[0]);','',
'const DecompEntry kDecomp[] = {']+emit('d',dec,9)+['};','const size_t kDecompSize = sizeof(kDecomp) / sizeof(kDecomp[0]);','',
'const CompEntry kComp[] = {']+emit('p',comp,8)+['};','const size_t kCompSize = sizeof(kComp) / sizeof(kComp[0]);','','}  // namespace adallm::text::unicode_data']
open(sys.argv[1],'w').write('\n'.join(L)+'\n')
print(len(ccc),len(dec),len(comp))
