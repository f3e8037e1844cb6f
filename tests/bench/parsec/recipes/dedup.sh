# dedup: deduplicating compressor, a 5-stage pthreads pipeline (fragment,
# Rabin-fingerprint refine, SHA1 dedup, compress, reorder/write), -t N
# threads per parallel stage.  Built with its Makefile and version=pthreads
# as PARSEC's gcc-pthreads.bldconf does.  SHA1 is the OpenSSL code PARSEC
# bundles (src/sha.c, src/openssl/), so no OpenSSL is needed; zlib is
# (for gzip, its default), and there is none for the guest, so the sed
# turns off the Makefile's ENABLE_GZIP_COMPRESSION (its own switch) and
# the program must be run with "-w none" (the compress stage then copies).
# patches/dedup-openssl-headers.patch: the bundled sha.h/sha_locl.h still
# include OpenSSL's e_os2.h and opensslconf.h, which PARSEC does not bundle
# (and the cross compiler would take the build host's OpenSSL 3 headers
# from /usr/include); SHA1 needs nothing from them.
# -fcommon: decoder.c and encoder.c/dedup.c both define the globals conf
# and cache (tentative definitions; GCC 10+ defaults to -fno-common).

build_dedup() {
    src=$1
    bin=$2
    patch -p1 < "$PARSEC_PATCHES/dedup-openssl-headers.patch"
    cd "$src/src"
    sed -i 's/^CFLAGS += -DENABLE_GZIP_COMPRESSION/#&/; s/^LIBS += -lz$/#&/' \
        Makefile
    CC="$CC" CFLAGS="$CFLAGS -fcommon" LDFLAGS="$LDFLAGS" make version=pthreads
    cp dedup "$bin"
}
