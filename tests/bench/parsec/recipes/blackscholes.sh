# blackscholes: option pricing, one pthread per slice of the options.
# The pthreads version is the m4 expansion of blackscholes.c with
# c.m4.pthreads, as PARSEC's own build does.  inputgen (host program) makes
# inputs of any size from optionData.txt; it is built for the build host
# next to the guest binary as <bin>-inputgen.

build_blackscholes() {
    src=$1
    bin=$2
    cd "$src/src"
    m4 ./c.m4.pthreads blackscholes.c > blackscholes.m4.cpp
    $CXX $CXXFLAGS -DENABLE_THREADS -DNCO=4 blackscholes.m4.cpp \
        $LDFLAGS -o "$bin"
    gcc -O2 -o "$bin-inputgen" inputgen.c
}
