# swaptions: HJM Monte Carlo pricing of a portfolio of swaptions, one
# pthread per block of swaptions (-ns swaptions, -sm trials, -nt threads).
# Built as PARSEC's Makefile does for version=pthreads: every source,
# nr_routines.c included, compiled as C++ with -DENABLE_THREADS.
# -Wno-register: icdf.cpp uses the C++17-removed `register` (a no-op).

build_swaptions() {
    src=$1
    bin=$2
    cd "$src/src"
    $CXX $CXXFLAGS -Wno-register -DENABLE_THREADS \
        CumNormalInv.cpp MaxFunction.cpp RanUnif.cpp icdf.cpp \
        HJM_SimPath_Forward_Blocking.cpp HJM.cpp HJM_Swaption_Blocking.cpp \
        HJM_Securities.cpp -x c++ nr_routines.c -x none \
        $LDFLAGS -o "$bin"
}
