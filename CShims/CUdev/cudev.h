/* libudev: enumeration and the device monitor. */
#ifndef CUDEV_H
#define CUDEV_H
#include <libudev.h>
#endif
