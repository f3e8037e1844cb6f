# bodytrack: body tracking with an annealed particle filter over 4 camera
# views, pthreads thread pool (thread model 2).  PARSEC configures it with
# --enable-threads --disable-openmp --disable-tbb and -fexceptions; its
# autotools/libtool setup (2007 config.sub: no aarch64 or riscv64) only
# compiles the sources below into one program, so they are compiled
# directly with the defines that configure would put in config.h.
# -std=gnu++98: the 2007 code has throw() specifications, which C++17
# rejects; -fpermissive: ParticleFilterPthread.h calls AddGaussianNoise
# before its declaration in a template (a warning with it, once).
# The program writes poses.txt into the dataset directory it is given.

build_bodytrack() {
    src=$1
    bin=$2
    cd "$src/src"
    t=TrackingBenchmark
    $CXX $CXXFLAGS -std=gnu++98 -fpermissive -fexceptions -Wno-unknown-pragmas \
        -DUSE_THREADS=1 -DHAVE_LIBPTHREAD=1 -DHAVE_STDINT_H=1 \
        -IFlexImageLib -I$t -I$t/threads \
        FlexImageLib/FlexImage.cpp FlexImageLib/FlexIO.cpp \
        $t/AnnealingFactor.cpp $t/BodyGeometry.cpp $t/BodyPose.cpp \
        $t/CameraModel.cpp $t/CovarianceMatrix.cpp $t/ImageMeasurements.cpp \
        $t/ImageProjection.cpp $t/RandomGenerator.cpp $t/TrackingModel.cpp \
        $t/main.cpp $t/TrackingModelPthread.cpp $t/AsyncIO.cpp \
        $t/threads/Barrier.cpp $t/threads/Condition.cpp $t/threads/Mutex.cpp \
        $t/threads/RWLock.cpp $t/threads/Thread.cpp \
        $t/threads/ThreadGroup.cpp $t/threads/WorkerGroup.cpp \
        $LDFLAGS -lm -o "$bin"
}
