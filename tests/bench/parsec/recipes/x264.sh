# x264: H.264 video encoder (x264 r1047, 2008), frame-level pthreads
# pipeline (--threads N).  Built as PARSEC's gcc-pthreads.bldconf does:
# its own configure with --enable-pthread, here also --disable-asm (the
# only asm is x86/PPC/SPARC).  Fixes:
#  - its configure normalises --host with a 2007 config.sub that knows no
#    aarch64 or riscv64 (and the mirror lost the scripts' x bits), so the
#    sed skips that step and --host gets a full cpu-vendor-os triple;
#  - -fno-aggressive-loop-optimizations: common/set.c walks quant4_mf[4]
#    on into the next member quant8_mf[2] (i < 6); GCC 12 -O2 trusts the
#    bound, frees garbage and the encoder aborts ("double free") on exit;
#  - configure puts "-O4 -ffast-math" first: our flags come after, and
#    -fno-fast-math keeps float results independent of the compiler;
#  - ar/ranlib of the cross toolchain for libx264.a.
# The inputs are tiny (simdev: 3 frames of 64x36), so <bin>-inputgen (a
# host sh script) makes a longer clip: "x264-inputgen IN.y4m COPIES OUT.y4m"
# writes IN's header and then all of IN's frames COPIES times over.

build_x264() {
    src=$1
    bin=$2
    cd "$src/src"
    sed -i 's|^host=`./config.sub $host`|: # no config.sub: full triple given|' \
        configure
    CC="$CC" bash ./configure --host="$ISA-unknown-linux-gnu" \
        --disable-asm --enable-pthread --disable-mp4-output \
        --extra-cflags="$CFLAGS -fno-fast-math -fno-aggressive-loop-optimizations" \
        --extra-ldflags="$LDFLAGS"
    make AR="$TRIPLE-ar" RANLIB="$TRIPLE-ranlib" x264
    cp x264 "$bin"
    cat > "$bin-inputgen" <<'GEN'
#!/bin/sh
# x264-inputgen IN.y4m COPIES OUT.y4m: IN's frames COPIES times over.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 IN.y4m COPIES OUT.y4m" >&2; exit 1; }
hl=$(head -n 1 "$1" | wc -c)
{
    head -n 1 "$1"
    i=0
    while [ "$i" -lt "$2" ]; do
        tail -c +"$((hl + 1))" "$1"
        i=$((i + 1))
    done
} > "$3"
GEN
    chmod +x "$bin-inputgen"
}
